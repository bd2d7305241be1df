// Runs the demo's own services and driver (scripts/record/demo/, unchanged) as pods. They were
// written for one machine, each on its own loopback address; here each is a Service:
//   127.0.0.2 → order-service, 127.0.0.3 → payment-service, 127.0.0.4 → postgres.
// Preloaded with `node --import ./k8s-shim.mjs`: listening on one of those addresses listens on
// every address of the pod, a connection to one goes to its Service, and the loopback source
// addresses the demo binds are dropped (the pod's own address is used).
import net from 'node:net';

const SERVICES = { '127.0.0.2': 'order-service', '127.0.0.3': 'payment-service', '127.0.0.4': 'postgres' };
const isDemoLoopback = (a) => typeof a === 'string' && /^127\.0\.0\.\d+$/.test(a);

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  // net.connect() and http pass an array of normalized arguments, whose options are its first item.
  const normalized = Array.isArray(args[0]);
  const list = normalized ? args[0] : args;
  const o = list[0];
  if (o && typeof o === 'object') {
    const options = { ...o };
    if (SERVICES[options.host]) options.host = SERVICES[options.host];
    if (isDemoLoopback(options.localAddress)) delete options.localAddress;
    list[0] = options;
  } else if (typeof o === 'number' || typeof o === 'string') {
    if (SERVICES[list[1]]) list[1] = SERVICES[list[1]];
  }
  return connect.apply(this, args);
};

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (isDemoLoopback(args[1])) args[1] = '0.0.0.0';
  return listen.apply(this, args);
};
