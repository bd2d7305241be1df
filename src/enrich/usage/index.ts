/**
 * Pod resource use (issue 16): CPU and memory of the pods involved in a window, sampled from the
 * metrics API (metrics.k8s.io/v1beta1), so a verdict can say whether memory spiked during a run.
 */
export { bytes, millicores, parseQuantity } from './quantity.js';
export {
  goDuration, mergeUsage, MIN_INTERVAL_MS, UsageSampler, type PodUsage, type UsageAnswer, type UsageReport, type UsageSamplerOptions, type UsageSource,
} from './sampler.js';
