/**
 * @module The delegate configs the plugin keeps between ADD and DEL/CHECK: one file per
 * container ID in `dataDir` (directory 0700, file 0600, synced before the delegate runs), so DEL
 * tears down exactly what ADD set up even if subnet.env changed in between (flannel-io/cni-plugin
 * `saveScratchNetConf`/`consumeScratchNetConf`). Container IDs are validated by the caller
 * (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), so they cannot leave the directory.
 */
import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Writes `config` to `<dataDir>/<containerId>` and syncs it. */
export function saveDelegateConfig(dataDir: string, containerId: string, config: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const fd = openSync(join(dataDir, containerId), "w", 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, config);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The saved config of `containerId`, or undefined when there is none. */
export function loadDelegateConfig(dataDir: string, containerId: string): string | undefined {
  try {
    return readFileSync(join(dataDir, containerId), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** Forgets the saved config of `containerId` (absent is fine). */
export function removeDelegateConfig(dataDir: string, containerId: string): void {
  rmSync(join(dataDir, containerId), { force: true });
}

/** The container IDs that have a saved config in `dataDir` (none when it does not exist). */
export function listDelegateConfigs(dataDir: string): string[] {
  try {
    return readdirSync(dataDir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}
