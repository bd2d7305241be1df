/**
 * The container and pod a cgroup path belongs to, from the names container runtimes give their
 * cgroups (issue 18, "Process attribution"):
 *
 *   systemd driver   …/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
 *                    …/crio-<id>.scope, …/docker-<id>.scope, …/libpod-<id>.scope (Podman)
 *   cgroupfs driver  /kubepods/burstable/pod<uid>/<id>, /docker/<id>
 *
 * `<id>` is the 64 hex digits the runtime reports as a pod's status.containerStatuses[].containerID
 * after its "<runtime>://" prefix. CRI-O's monitor (crio-conmon-<id>.scope) is not the container.
 */

export interface ContainerRef {
  /** 64 lower-case hex digits, as the runtime names the container. */
  containerId?: string;
  /** The pod's metadata.uid, with dashes. */
  podUid?: string;
}

const SCOPE = /^(?:cri-containerd|crio|docker|libpod)-([0-9a-f]{64})\.scope$/;
const BARE = /^[0-9a-f]{64}$/;
/** kubepods-…-pod<uid>.slice (systemd: dashes of the uid become underscores) or pod<uid> (cgroupfs). */
const POD = /(?:^|-)pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/;

/** The container id and pod uid a cgroup path names; empty when it names neither. */
export function containerOfPath(path: string): ContainerRef {
  const out: ContainerRef = {};
  for (const seg of path.split('/')) {
    if (!seg) continue;
    const scope = SCOPE.exec(seg);
    if (scope) out.containerId = scope[1];
    else if (BARE.test(seg)) out.containerId = seg;
    const pod = POD.exec(seg);
    if (pod) out.podUid = pod[1]!.replaceAll('_', '-');
  }
  return out;
}

/** A container id as the Kubernetes API gives it ("containerd://<id>", "cri-o://<id>", "docker://<id>"), without its runtime. */
export function bareContainerId(id: string | undefined): string | undefined {
  if (!id) return undefined;
  const i = id.indexOf('://');
  const bare = (i >= 0 ? id.slice(i + 3) : id).toLowerCase();
  return bare || undefined;
}
