/**
 * A real SMTP sink for tests (npm `smtp-server`) on a free loopback port:
 * accepts every message without authentication or TLS and keeps it, with the
 * plain-text part decoded (quoted-printable / base64), so a test can read links.
 */

import { SMTPServer } from 'smtp-server';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

/** One received message. */
export interface ReceivedMail {
  from: string;
  to: string[];
  subject: string;
  /** The text body, decoded. */
  text: string;
  raw: string;
}

export interface SmtpSink {
  /** `smtp://127.0.0.1:<port>` for nodemailer / gateway.yaml. */
  readonly url: string;
  readonly port: number;
  readonly messages: ReceivedMail[];
  /** Wait for the next not-yet-returned message for which `match` holds. */
  next(match?: (m: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
}

function unfoldHeaders(head: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return out;
}

function decodeBody(body: string, encoding: string | undefined): string {
  const enc = (encoding ?? '').toLowerCase();
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (enc === 'quoted-printable') {
    const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}

function decodeMimeWords(s: string): string {
  return s.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_m, _cs: string, kind: string, text: string) =>
    kind.toUpperCase() === 'B'
      ? Buffer.from(text, 'base64').toString('utf8')
      : Buffer.from(
          text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
          'latin1',
        ).toString('utf8'),
  );
}

/** Parse the text part of a simple (single part or multipart/alternative) message. */
function parseMail(raw: string): { subject: string; text: string } {
  const split = raw.search(/\r?\n\r?\n/);
  const headers = unfoldHeaders(raw.slice(0, split));
  const body = raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const type = headers.get('content-type') ?? 'text/plain';
  const subject = decodeMimeWords(headers.get('subject') ?? '');
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (boundary) {
    for (const part of body.split(`--${boundary}`)) {
      const ps = part.search(/\r?\n\r?\n/);
      if (ps < 0) continue;
      const ph = unfoldHeaders(part.slice(0, ps).trim());
      if ((ph.get('content-type') ?? '').toLowerCase().startsWith('text/plain')) {
        return { subject, text: decodeBody(part.slice(ps).replace(/^\r?\n\r?\n/, ''), ph.get('content-transfer-encoding')) };
      }
    }
  }
  return { subject, text: decodeBody(body, headers.get('content-transfer-encoding')) };
}

/** Start the sink; `close()` it afterwards. */
export async function startSmtpSink(): Promise<SmtpSink> {
  const messages: ReceivedMail[] = [];
  const wakers: Array<() => void> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const { subject, text } = parseMail(raw);
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          subject,
          text,
          raw,
        });
        for (const w of wakers.splice(0)) w();
        callback();
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const port = (server.server.address() as AddressInfo).port;
  const returned = new Set<ReceivedMail>();
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    messages,
    async next(match = () => true, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = messages.find((x) => !returned.has(x) && match(x));
        if (m) {
          returned.add(m);
          return m;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('no mail arrived at the SMTP sink');
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          wakers.push(() => (clearTimeout(t), r()));
        });
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
