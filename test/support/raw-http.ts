/** Sends bytes exactly as written (smuggling and parser tests) and reads the whole answer. */

import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  text: string;
  /** False when our own timeout ended the exchange (the server kept the connection open). */
  closedByServer: boolean;
}

/** Write `payload` to the server at `url` and collect what comes back until close or `timeoutMs`. */
export function rawRequest(url: string, payload: string | Buffer, timeoutMs = 3000): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let timedOut = false;
    const finish = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text, closedByServer: !timedOut });
    };
    socket.setTimeout(timeoutMs, () => {
      timedOut = true;
      socket.destroy();
      finish();
    });
    socket.on('data', (c) => {
      chunks.push(c);
      // One complete response is enough; don't wait for keep-alive to time out.
      const text = Buffer.concat(chunks).toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      const cl = /\r\ncontent-length: *(\d+)/i.exec(text);
      if (head >= 0 && cl && text.length >= head + 4 + Number(cl[1])) {
        socket.destroy();
        finish();
      }
    });
    socket.on('end', finish);
    socket.on('error', (err) => (chunks.length ? finish() : reject(err)));
    socket.write(payload);
  });
}
