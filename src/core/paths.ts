/**
 * Paths that come from jobs must be absolute (POSIX `/…`, Windows `C:\…` or UNC `\\host\…`)
 * and must not climb with `..`: they are handed to other machines, where a relative path
 * would mean something different on every worker.
 */
export function absolutePathProblem(path: string): string | undefined {
  if (path.length === 0) return 'path is empty';
  if (path.length > 1024) return 'path is longer than 1024 characters';
  if (path.includes('\0')) return 'path contains a NUL character';
  const isPosix = path.startsWith('/');
  const isDrive = /^[A-Za-z]:[\\/]/.test(path);
  const isUnc = path.startsWith('\\\\');
  if (!isPosix && !isDrive && !isUnc) return `"${path}" is not an absolute path`;
  if (path.split(/[\\/]+/).some((segment) => segment === '..')) {
    return `"${path}" contains a ".." segment`;
  }
  return undefined;
}

/** Drops a trailing separator (but not the root's) so one folder has one spelling. */
export function trimTrailingSeparator(path: string): string {
  return path.length > 1 && /[\\/]$/.test(path) && !/^[A-Za-z]:[\\/]$/.test(path)
    ? path.replace(/[\\/]+$/, '')
    : path;
}
