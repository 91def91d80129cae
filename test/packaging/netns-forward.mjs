// Runs inside the Docker suite's engine namespace (nsenter --net): DIR/<port>.sock -> 127.0.0.1:<port> there.
// Unix sockets are files, so the test process outside the namespace can connect to them.
import net from 'node:net';
import path from 'node:path';

const [dir, ...ports] = process.argv.slice(2);
let listening = 0;
for (const port of ports) {
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  server.listen(path.join(dir, `${port}.sock`), () => {
    if (++listening === ports.length) process.stdout.write('ready\n');
  });
}
process.on('SIGTERM', () => process.exit(0));
