"""Every call the client makes exists in the manager's OpenAPI document: its operationId,
method, path template, path parameters and query parameter names."""

import re
import unittest

import drover
from farm import Farm

FARM = None


def setUpModule():
    global FARM
    FARM = Farm("manager")


def tearDownModule():
    if FARM is not None:
        FARM.stop()


def problems_with(call, document):
    """What is wrong with one declared call against the document (empty when it matches)."""
    found = []
    operation = document["paths"].get(drover.API_PREFIX + call.path, {}).get(call.method.lower())
    if operation is None:
        return ["%s: no %s %s in the document" % (call.name, call.method, call.path)]
    if operation.get("operationId") != call.name:
        found.append("%s: the document names it %s" % (call.name, operation.get("operationId")))
    params = operation.get("parameters", [])
    in_path = set(p["name"] for p in params if p["in"] == "path")
    in_query = set(p["name"] for p in params if p["in"] == "query")
    template = set(re.findall(r"\{(\w+)\}", call.path))
    if template != in_path:
        found.append("%s: path parameters %s, document %s" % (call.name, template, in_path))
    unknown = set(call.query) - in_query
    if unknown:
        found.append("%s: query parameters %s not in the document" % (call.name, unknown))
    return found


class DriftTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.document = drover.Client(FARM.url).openapi()

    def test_every_call_of_the_client_is_in_the_document(self):
        self.assertTrue(self.document["openapi"].startswith("3.1"))
        found = []
        for call in drover.CALLS.values():
            found += problems_with(call, self.document)
        self.assertEqual(found, [])

    def test_the_check_catches_drift(self):
        wrong = [
            drover.Call("getJob", "GET", "/job/{id}", ()),
            drover.Call("getJob", "PUT", "/jobs/{id}", ()),
            drover.Call("getJob", "GET", "/jobs/{jobId}", ()),
            drover.Call("listJobs", "GET", "/jobs", ("status",)),
            drover.Call("listTheJobs", "GET", "/jobs", ()),
        ]
        for call in wrong:
            self.assertNotEqual(problems_with(call, self.document), [], call)

    def test_the_client_only_calls_what_it_declares(self):
        c = drover.Client(FARM.url)
        with self.assertRaises(ValueError):
            c.call("listJobs", query={"status": "x"})
        with self.assertRaises(ValueError):
            c.call("getJob", params={"jobId": "x"})


if __name__ == "__main__":
    unittest.main()
