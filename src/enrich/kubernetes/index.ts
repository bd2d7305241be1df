/**
 * Kubernetes pod identity (issue 16): the API's pods, Services, EndpointSlices and nodes as an
 * IdentitySource that answers for a time (an IP history), and a holding stage for records whose
 * pod is not known yet. The client library (@kubernetes/client-node) is only ever imported from
 * inside functions that talk to the API, so loading this module costs nothing to commands that
 * do not use Kubernetes.
 */
export { KubeConfigError, loadKubeConfig, nodeName, type KubeConfigOptions } from './config.js';
export { IpHistory, type IpHistoryOptions, type Version as IpVersion } from './history.js';
export { Informer, InformerError, type InformerCounters, type InformerEventType, type InformerTuning } from './informer.js';
export {
  KubernetesIdentity, KubernetesIdentityError, type KubernetesIdentityOptions, type KubernetesIdentityStats, type PodListener,
} from './identity.js';
export { LateIdentities, type KnownSource, type LateOptions, type LateStats } from './late.js';
export { applyProcessIdentity, ContainerIndex, containerIdsOf, type ProcessIdentitySource } from './containers.js';
