/**
 * Whether a process with this pid exists on this machine (signal 0 checks without signalling).
 *
 * EPERM means the process exists but belongs to another user, so it counts as alive.
 *
 * @example
 * isProcessAlive(process.pid); // true
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
