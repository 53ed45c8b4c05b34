"""Runs the Python integration tests (``npm run test:python``): the ``drover`` client and the
Katana farm plug-in, against real farms started from the built ``dist/``. Standard library only."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SUITES = [
    # (test folder, folders its imports need)
    (os.path.join(HERE, "python", "tests"), [os.path.join(HERE, "python")]),
    (
        os.path.join(HERE, "katana", "tests"),
        [
            os.path.join(HERE, "python"),
            os.path.join(HERE, "python", "tests"),
            os.path.join(HERE, "katana", "python"),
        ],
    ),
]


def main():
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for folder, paths in SUITES:
        if not os.path.isdir(folder):
            continue
        for p in paths + [folder]:
            if p not in sys.path:
                sys.path.insert(0, p)
        suite.addTests(loader.discover(folder, pattern="test_*.py", top_level_dir=folder))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
