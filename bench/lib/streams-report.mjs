/**
 * bench/streams.mjs's table: one line per gateway and number of held streams,
 * and Warden's figures over R's at the same number (the Node floor).
 */

/** Warden's value over R's for the same number of streams (null without both, or when R's is 0). */
export function overR(results, row, key) {
  const r = results.find((x) => x.row === 'R' && x.streams === row.streams);
  if (row.row === 'R' || !r || !(r[key] > 0)) return null;
  return row[key] / r[key];
}

const times = (x) => (x === null ? '–' : `${x.toFixed(2)}×`);

/** The markdown report: `header`, then the table, then how to read it. */
export function streamsMarkdown(results, { header = '' } = {}) {
  const lines = [
    header,
    '| gateway | streams | opened in s | RSS before MB | RSS held MB | KB per stream | × R | descriptors per stream | idle CPU % | one event to all, ms | CPU µs per event | × R | closed in ms | streams left | agent connections left |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const x of results) {
    lines.push(
      `| ${x.row} | ${x.streams.toLocaleString('en')} | ${x.open_s} | ${x.rss_before_mb} | ${x.rss_held_mb} | ${x.kb_per_stream} | ${times(overR(results, x, 'kb_per_stream'))} | ${x.fds_per_stream} | ${x.idle_cpu_pct} | ${x.fanout_ms} | ${x.cpu_us_per_event} | ${times(overR(results, x, 'cpu_us_per_event'))} | ${x.closed_ms ?? 'not within 30 s'} | ${x.streams_left} | ${x.agent_connections_left} |`,
    );
  }
  lines.push(
    '',
    "KB per stream = (RSS with the streams held − RSS before) / streams, 3 s after the last opened. Idle CPU: the gateway while every stream is held and the upstream silent (Warden sends each stream that sent nothing for mcp.keepalive, 25 s by default, a keep-alive comment; the W0 row turns them off). One event to all: from the upstream writing one message to every stream until the last agent has it (median of the events); CPU µs per event: the gateway's CPU over all the events / (events × streams). Closed in: from the agents leaving until no stream is open upstream and the gateway holds no agent connection; streams and agent connections left: what was still open then (0 and 0: nothing leaked). Descriptors per stream: the gateway's new file descriptors / streams (about 2: the agent's connection and the upstream one, which may be a pooled connection the sessions' initialize requests left idle).",
    '',
  );
  return lines.join('\n');
}
