import { createSocket } from 'node:dgram';

/**
 * A DNS server for tests, standing in for Docker's embedded DNS: A records the test sets, moves and removes
 * (a recreated or stopped container), NXDOMAIN for any other name. UDP on loopback; nothing else is answered.
 */
export interface FakeDns {
  port: number;
  /** name -> IPv4 address, or several "a,b,c" (a scaled service); a name missing here answers NXDOMAIN. */
  records: Map<string, string>;
  /** Questions asked, by name. */
  queries: Map<string, number>;
  close(): Promise<void>;
}

export async function startFakeDns(records: Record<string, string> = {}): Promise<FakeDns> {
  const socket = createSocket('udp4');
  const dns: FakeDns = {
    port: 0,
    records: new Map(Object.entries(records)),
    queries: new Map(),
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg, rinfo) => {
    const answer = respond(msg, dns);
    if (answer) socket.send(answer, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  dns.port = socket.address().port;
  return dns;
}

/** One question per query (what resolvers send); anything malformed is dropped, as a timeout. */
function respond(msg: Buffer, dns: FakeDns): Buffer | null {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return null;
  const labels: string[] = [];
  let at = 12;
  while (at < msg.length && msg[at] !== 0) {
    const len = msg[at];
    labels.push(msg.subarray(at + 1, at + 1 + len).toString('ascii'));
    at += 1 + len;
  }
  const questionEnd = at + 5; // the zero byte, QTYPE, QCLASS
  if (questionEnd > msg.length) return null;
  const name = labels.join('.').toLowerCase();
  const qtype = msg.readUInt16BE(at + 1);
  dns.queries.set(name, (dns.queries.get(name) ?? 0) + 1);
  const address = dns.records.get(name);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(msg.readUInt16BE(0), 0); // id
  // QR, RD copied, RA; rcode 3 (NXDOMAIN) for an unknown name.
  header.writeUInt16BE(0x8180 | (msg.readUInt16BE(2) & 0x0100) | (address === undefined ? 3 : 0), 2);
  header.writeUInt16BE(1, 4);
  const withAnswer = address !== undefined && qtype === 1;
  const addresses = withAnswer ? address.split(',') : [];
  header.writeUInt16BE(addresses.length, 6);
  const question = msg.subarray(12, questionEnd);
  if (!withAnswer) return Buffer.concat([header, question]);
  const records = addresses.map((one) => {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    record.writeUInt16BE(1, 2); // A
    record.writeUInt16BE(1, 4); // IN
    record.writeUInt32BE(600, 6); // TTL: nginx's `valid=` overrides it
    record.writeUInt16BE(4, 10);
    one.split('.').forEach((octet, i) => {
      record.writeUInt8(Number(octet), 12 + i);
    });
    return record;
  });
  return Buffer.concat([header, question, ...records]);
}
