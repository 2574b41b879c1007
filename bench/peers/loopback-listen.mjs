// Preloaded with `node --import` for the server-everything peer: its
// streamableHttp transport calls `app.listen(PORT)`, which binds every
// interface. This makes a listen() given a port but no host bind 127.0.0.1,
// so the benchmark stays on loopback. Nothing else changes.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const port = args[0];
  const isPort = typeof port === "number" || (typeof port === "string" && /^\d+$/.test(port));
  if (isPort && typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
  return listen.apply(this, args);
};
