#!/usr/bin/python3
"""Runs one operation of Debian's python3-kubernetes client against a kubeconfig, as a user would.

    client.py KUBECONFIG list|watch|create|exec|logs|cluster NAMESPACE [NAME]

Prints what it saw on stdout and exits 0; on any failure it prints the client's own error text on stderr and exits 1.
The Portcullis end-to-end tests (tests/Portcullis.EndToEnd.Tests/OfficialClientTests.cs) run it against the demo.
"""
import sys
import threading
import traceback

try:
    from kubernetes import client, config, watch
    from kubernetes.stream import stream
except ImportError as error:
    sys.stderr.write("python3-kubernetes is not installed (%s): run .ci/run, or apt-get install python3-kubernetes\n" % error)
    sys.exit(3)


def pod(name):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "python-client"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="sandbox/echo:latest")]))


def list_pods(api, ns, _):
    pods = api.list_namespaced_pod(ns)
    # Every field the strict models require was deserialised; read a few that used to be missing.
    for item in pods.items:
        for status in item.status.container_statuses:
            print("pod %s container %s image %s imageID %s ready %s" % (
                item.metadata.name, status.name, status.image, status.image_id, status.ready))
    configmaps = api.list_namespaced_config_map(ns)
    print("configmaps %s" % " ".join(c.metadata.name for c in configmaps.items))
    print("listed %d pods, resourceVersion %s" % (len(pods.items), pods.metadata.resource_version))


def cluster(api, ns, name):
    """Everything else the sandbox serves, as an administrator: namespaces, pods, secrets, events, service accounts, a Status."""
    print("namespaces %s" % " ".join("%s=%s" % (n.metadata.name, n.status.phase) for n in api.list_namespace().items))
    print("pods in all namespaces %d" % len(api.list_pod_for_all_namespaces().items))
    print("secrets %s" % " ".join(s.metadata.name for s in api.list_secret_for_all_namespaces().items))
    print("service accounts %d" % len(api.list_service_account_for_all_namespaces().items))
    api.create_namespaced_event(ns, client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=name),
        involved_object=client.V1ObjectReference(kind="Pod", namespace=ns, name="web-1", api_version="v1"),
        reason="Tested", message="python3-kubernetes was here", type="Normal"))
    events = api.list_namespaced_event(ns)
    print("events %s" % " ".join("%s:%s" % (e.metadata.name, e.reason) for e in events.items))
    try:
        api.read_namespaced_pod("no-such-pod", ns)
        raise RuntimeError("reading a missing pod did not fail")
    except client.exceptions.ApiException as missing:
        status = api.api_client.deserialize(_Body(missing.body), "V1Status")
        print("missing pod: %d %s %s" % (missing.status, status.reason, status.message))
        if missing.status != 404 or status.reason != "NotFound":
            raise


class _Body:
    """What ApiClient.deserialize reads: a response with .data."""

    def __init__(self, data):
        self.data = data


def watch_pods(api, ns, name):
    listed = api.list_namespaced_pod(ns)
    w = watch.Watch()
    failure = []

    def create_later():
        try:
            api.create_namespaced_pod(ns, pod(name))
        except Exception as error:  # reported by the main thread
            failure.append(error)
            w.stop()

    timer = threading.Timer(0.5, create_later)
    timer.start()
    try:
        for event in w.stream(api.list_namespaced_pod, ns, resource_version=listed.metadata.resource_version, timeout_seconds=60):
            obj = event["object"]
            print("event %s %s %s" % (event["type"], obj.metadata.name, obj.status.phase))
            if event["type"] in ("ADDED", "MODIFIED") and obj.metadata.name == name:
                print("watched %s %s" % (event["type"], name))
                w.stop()
                return
    finally:
        timer.cancel()
    if failure:
        raise failure[0]
    raise RuntimeError("the watch ended without an event for pod %s" % name)


def create(api, ns, name):
    created = api.create_namespaced_pod(ns, pod(name))
    print("created pod %s uid %s phase %s imageID %s" % (
        created.metadata.name, created.metadata.uid, created.status.phase, created.status.container_statuses[0].image_id))
    cm = api.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name), data={"created-by": "python3-kubernetes"}))
    read = api.read_namespaced_config_map(cm.metadata.name, ns)
    print("created configmap %s data %s" % (read.metadata.name, read.data["created-by"]))
    api.delete_namespaced_config_map(name, ns)
    deleted = api.delete_namespaced_pod(name, ns)
    print("deleted pod %s" % deleted.metadata.name)


def first_running_container(api, ns, name):
    """As a user would: read the pod and take its first running container."""
    read = api.read_namespaced_pod(name, ns)
    running = [s.name for s in read.status.container_statuses if s.state.running is not None]
    if not running:
        raise RuntimeError("pod %s/%s has no running container" % (ns, name))
    return running[0]


def exec_in(api, ns, name):
    container = first_running_container(api, ns, name)
    out = stream(api.connect_get_namespaced_pod_exec, name, ns, container=container, command=["echo", "hello", "from", "python"],
                 stderr=True, stdin=False, stdout=True, tty=False, _request_timeout=60)
    print("exec output: %s" % out.strip())
    if out.strip() != "hello from python":
        raise RuntimeError("exec printed %r, not 'hello from python'" % out)


def logs(api, ns, name):
    container = first_running_container(api, ns, name)
    text = api.read_namespaced_pod_log(name, ns, container=container, tail_lines=2)
    print("logs: %s" % text.strip().replace("\n", " | "))
    if "ready" not in text:
        raise RuntimeError("the log has no 'ready' line: %r" % text)
    # Follow the log as the client's documentation does (a Watch over read_namespaced_pod_log yields its lines) until
    # the sandbox's first heartbeat line, then stop.
    w = watch.Watch()
    for line in w.stream(api.read_namespaced_pod_log, name, ns, container=container, follow=True, tail_lines=1,
                         _request_timeout=60):
        print("followed log: %s" % line)
        if "heartbeat 1" in line:
            w.stop()
            return
    raise RuntimeError("the followed log ended before its first heartbeat")


OPERATIONS = {"list": list_pods, "cluster": cluster, "watch": watch_pods, "create": create, "exec": exec_in, "logs": logs}


def main(argv):
    if len(argv) < 4 or argv[2] not in OPERATIONS:
        sys.stderr.write(__doc__)
        return 2
    kubeconfig, operation, ns = argv[1], argv[2], argv[3]
    name = argv[4] if len(argv) > 4 else None
    config.load_kube_config(config_file=kubeconfig)
    api = client.CoreV1Api()
    try:
        OPERATIONS[operation](api, ns, name)
    except Exception as error:
        sys.stderr.write("python3-kubernetes %s failed: %s: %s\n" % (operation, type(error).__name__, error))
        traceback.print_exc(file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
