import { connect } from "node:net";

/**
 * Just enough of the redis protocol to ask a node's redis something from the
 * host (the test machine has no redis-cli): one inline command, one reply.
 */
export function redis(endpoint: string, command: string, timeoutMs = 2000): Promise<string> {
  const [host, port] = endpoint.split(":");
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port) });
    let data = "";
    const done = (e?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (e) reject(e);
    };
    const timer = setTimeout(() => done(new Error(`redis ${endpoint}: no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on("connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (d) => {
      data += d.toString();
      // +OK / -ERR / :1 / $-1 are one line; $n needs its payload line too.
      const m = /^\$(\d+)\r\n/.exec(data);
      if ((data[0] !== "$" && data.includes("\r\n")) || data.startsWith("$-1\r\n") || (m && data.length >= m[0].length + Number(m[1]) + 2)) {
        done();
        resolve(m ? data.slice(m[0].length, m[0].length + Number(m[1])) : data.trim());
      }
    });
    socket.on("error", (e) => done(e));
    socket.on("close", () => done(new Error(`redis ${endpoint}: connection closed`)));
  });
}
