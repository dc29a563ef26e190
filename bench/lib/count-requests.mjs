/**
 * For the diagnostics loaded into a served process with `--import`
 * (request-watch.mjs, alloc-watch.mjs): calls `onRequest` on every `request`
 * event of every node:http server in the process, by wrapping
 * http.Server.prototype.emit once (later calls add listeners to the same wrap).
 */

import http from 'node:http';

const listeners = [];

/** Call `onRequest()` for each request any node:http server of this process receives. */
export function onEachRequest(onRequest) {
  if (listeners.length === 0) {
    const emit = http.Server.prototype.emit;
    http.Server.prototype.emit = function countRequests(event) {
      if (event === 'request') for (let i = 0; i < listeners.length; i++) listeners[i]();
      // Pass the event's arguments on untouched, without an array per call.
      return emit.apply(this, arguments);
    };
  }
  listeners.push(onRequest);
}
