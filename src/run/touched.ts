import { httpHalves, type FlowRecord } from '../flows/index.js';
import { pathTemplate, type ServiceNames } from '../verify/index.js';

/** Bounds on what one run record lists (the run log keeps thousands of runs). */
const MAX_SERVICES = 200;
const MAX_ENDPOINTS = 500;

/**
 * What a run exercised, for runs_touching: the services it called (servers, named as findings
 * name them: an identity, the spec's `services:`, else "ip:port"; a client only when it has a
 * name, since an unnamed one is an ephemeral port), and its HTTP, HTTP/2 and gRPC endpoints as
 * "service METHOD /path/{id}" with the path templated as diffs and N+1 detection template it.
 */
export function touched(flows: readonly FlowRecord[], names: ServiceNames): { services: string[]; endpoints: string[] } {
  const services = new Set<string>(), endpoints = new Set<string>();
  for (const f of flows) {
    const server = names.name(f.dst);
    services.add(server);
    const client = f.src.name ?? names.nameOfIp(f.src.ip);
    if (client !== undefined) services.add(client);
    if (httpHalves(f) && f.request) endpoints.add(`${server} ${f.request.method} ${pathTemplate(f.request.path)}`);
  }
  return { services: [...services].sort().slice(0, MAX_SERVICES), endpoints: [...endpoints].sort().slice(0, MAX_ENDPOINTS) };
}
