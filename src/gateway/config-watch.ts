/**
 * `server.watch`: tell when a file the running config was built from changes.
 * The directories holding them are watched, not the files: a watch on a file
 * follows its inode, which an editor's save (a new file renamed over the old)
 * or a Kubernetes ConfigMap update (a new `..data` symlink renamed over the
 * old) leaves behind after the first change.
 */

import { realpathSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { modelFiles } from '../authz/model.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';

/** The entry a Kubernetes ConfigMap or Secret volume renames to publish new contents (its files are symlinks through it). */
const KUBERNETES_DATA = '..data';

/** gateway.yaml, the model (an `fga.mod` with its module files) and the tuples file, as absolute paths. */
export async function configSources(file: string, config: Config): Promise<string[]> {
  const base = dirname(resolve(file));
  const tuples = config.authz.tuples ? [resolve(base, config.authz.tuples)] : [];
  return [resolve(file), ...(await modelFiles(resolve(base, config.authz.model))), ...tuples];
}

export interface ConfigWatch {
  /** Watch these files from now on: after a reload, the new config's files, their symlinks resolved again. */
  update(files: readonly string[]): void;
  close(): void;
}

/**
 * Call `onChange` when one of `files` is written, replaced or removed, or a
 * ConfigMap volume holding one is updated. Events for other files in the same
 * directories are ignored; callers debounce (one save is several events).
 */
export function watchConfigFiles(files: readonly string[], onChange: (path: string) => void, logger: Logger): ConfigWatch {
  /** Watched directory → the names in it that matter (replaced on update, read on every event). */
  const watched = new Map<string, { watcher: FSWatcher; names: Set<string> }>();
  let closed = false;

  const open = (dir: string, names: Set<string>) => {
    try {
      const watcher = watch(dir, (_event, name) => {
        const entry = watched.get(dir);
        if (!entry || (name !== null && !entry.names.has(name) && name !== KUBERNETES_DATA)) return;
        onChange(join(dir, name ?? ''));
      });
      watcher.on('error', (err) => {
        // E.g. the directory went away: watched again at the next update, if a file still lives there.
        logger.warn({ err, dir }, 'server.watch: stopped watching a directory');
        watcher.close();
        if (watched.get(dir)?.watcher === watcher) watched.delete(dir);
      });
      watched.set(dir, { watcher, names });
    } catch (err) {
      logger.warn({ err, dir }, 'server.watch: cannot watch a directory; SIGHUP still reloads');
    }
  };

  const update = (next: readonly string[]) => {
    if (closed) return;
    const wanted = new Map<string, Set<string>>();
    const add = (path: string) => {
      const dir = dirname(path);
      const names = wanted.get(dir) ?? new Set<string>();
      names.add(basename(path));
      wanted.set(dir, names);
    };
    for (const file of next) {
      add(file);
      // A symlink (a ConfigMap's files, or a file kept elsewhere): its target's directory too, so an edit there is seen.
      try {
        const real = realpathSync(file);
        if (real !== file) add(real);
      } catch {
        // Missing now: its directory still sees it come back.
      }
    }
    for (const [dir, entry] of watched) {
      if (wanted.has(dir)) continue;
      entry.watcher.close();
      watched.delete(dir);
    }
    for (const [dir, names] of wanted) {
      const entry = watched.get(dir);
      if (entry) entry.names = names;
      else open(dir, names);
    }
  };

  update(files);
  return {
    update,
    close() {
      closed = true;
      for (const { watcher } of watched.values()) watcher.close();
      watched.clear();
    },
  };
}
