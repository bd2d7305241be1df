/**
 * enrich/process/: the container (and pod uid) of the process at a connection's end, from its
 * cgroup (issue 18, "Process attribution"); the Kubernetes enricher names the pod from it.
 */
export { bareContainerId, containerOfPath, type ContainerRef } from './container.js';
export { CgroupResolver, cgroup2Mount, unifiedPath, type CgroupResolverCounters, type CgroupResolverOptions } from './cgroup.js';
