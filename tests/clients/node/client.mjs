// Runs one operation of npm's @kubernetes/client-node against a kubeconfig, as a user would.
//
//     node client.mjs KUBECONFIG list|watch|create|exec|logs|cluster NAMESPACE [NAME]
//
// Prints what it saw on stdout and exits 0; on any failure it prints the client's own error text on stderr and exits 1.
// The client's generated models declare which fields an object must have ('imageID': string, not 'imageID'?: string)
// but its deserializer does not check them; requireFields does, from the models' own declarations, so an object
// a strict client would refuse fails here too. The Portcullis end-to-end tests (OfficialClientTests) run this script.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';

let k8s;
try {
  k8s = await import('@kubernetes/client-node');
} catch (error) {
  process.stderr.write(`@kubernetes/client-node is not installed (${error.message}): run .ci/run, or npm ci in tests/clients/node\n`);
  process.exit(3);
}

const modelsDir = join(dirname(createRequire(import.meta.url).resolve('@kubernetes/client-node')), 'gen', 'models');
const requiredCache = new Map();

// The attributes a model declares without '?' in its .d.ts.
function requiredOf(type) {
  if (!requiredCache.has(type)) {
    let names = [];
    try {
      const text = readFileSync(join(modelsDir, `${type}.d.ts`), 'utf8');
      names = [...text.matchAll(/^\s+'([A-Za-z0-9_$]+)': /gm)].map((m) => m[1]);
    } catch {
      // not a generated model (a map or a primitive)
    }
    requiredCache.set(type, names);
  }
  return requiredCache.get(type);
}

// Walks an object (typed or raw JSON) with its model's attribute map and throws on a required attribute that is missing.
function requireFields(value, type, path) {
  if (value === undefined || value === null) return;
  const arrayMatch = /^Array<(.+)>$/.exec(type);
  if (arrayMatch) {
    value.forEach((item, i) => requireFields(item, arrayMatch[1], `${path}[${i}]`));
    return;
  }
  const model = k8s[type];
  if (typeof model?.getAttributeTypeMap !== 'function') return;
  const required = requiredOf(type);
  for (const attribute of model.getAttributeTypeMap()) {
    // A typed result carries the attribute's name, a raw watch object its JSON name.
    const field = value[attribute.name] ?? value[attribute.baseName];
    if (required.includes(attribute.baseName) && (field === undefined || field === null)) {
      throw new Error(`${type} at ${path}: required field '${attribute.baseName}' is missing or null`);
    }
    requireFields(field, attribute.type, `${path}.${attribute.baseName}`);
  }
}

function strict(value, type, what) {
  requireFields(value, type, what);
  return value;
}

const pod = (name) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app: 'node-client' } },
  spec: { containers: [{ name: 'main', image: 'sandbox/echo:latest' }] },
});

const withTimeout = (promise, ms, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms).unref())]);

async function list(kc, api, ns) {
  const pods = strict(await api.listNamespacedPod({ namespace: ns }), 'V1PodList', 'PodList');
  for (const item of pods.items) {
    for (const status of item.status.containerStatuses) {
      console.log(`pod ${item.metadata.name} container ${status.name} image ${status.image} imageID ${status.imageID} ready ${status.ready}`);
    }
  }
  const configmaps = strict(await api.listNamespacedConfigMap({ namespace: ns }), 'V1ConfigMapList', 'ConfigMapList');
  console.log(`configmaps ${configmaps.items.map((c) => c.metadata.name).join(' ')}`);
  console.log(`listed ${pods.items.length} pods, resourceVersion ${pods.metadata.resourceVersion}`);
}

// Everything else the sandbox serves, as an administrator: namespaces, pods, secrets, events, service accounts, a Status.
async function cluster(kc, api, ns, name) {
  const namespaces = strict(await api.listNamespace(), 'V1NamespaceList', 'NamespaceList');
  console.log(`namespaces ${namespaces.items.map((n) => `${n.metadata.name}=${n.status.phase}`).join(' ')}`);
  const pods = strict(await api.listPodForAllNamespaces(), 'V1PodList', 'PodList');
  console.log(`pods in all namespaces ${pods.items.length}`);
  const secrets = strict(await api.listSecretForAllNamespaces(), 'V1SecretList', 'SecretList');
  console.log(`secrets ${secrets.items.map((s) => s.metadata.name).join(' ')}`);
  const accounts = strict(await api.listServiceAccountForAllNamespaces(), 'V1ServiceAccountList', 'ServiceAccountList');
  console.log(`service accounts ${accounts.items.length}`);
  await api.createNamespacedEvent({
    namespace: ns,
    body: {
      apiVersion: 'v1', kind: 'Event', metadata: { name },
      involvedObject: { kind: 'Pod', namespace: ns, name: 'web-1', apiVersion: 'v1' },
      reason: 'Tested', message: '@kubernetes/client-node was here', type: 'Normal',
    },
  });
  const events = strict(await api.listNamespacedEvent({ namespace: ns }), 'CoreV1EventList', 'EventList');
  console.log(`events ${events.items.map((e) => `${e.metadata.name}:${e.reason}`).join(' ')}`);
  try {
    await api.readNamespacedPod({ name: 'no-such-pod', namespace: ns });
  } catch (error) {
    const status = strict(JSON.parse(error.body), 'V1Status', 'Status');
    console.log(`missing pod: ${error.code} ${status.reason} ${status.message}`);
    if (error.code !== 404 || status.reason !== 'NotFound') throw error;
    return;
  }
  throw new Error('reading a missing pod did not fail');
}

async function watch(kc, api, ns, name) {
  const listed = await api.listNamespacedPod({ namespace: ns });
  let abort;
  const seen = new Promise((resolve, reject) => {
    new k8s.Watch(kc)
      .watch(`/api/v1/namespaces/${ns}/pods`, { resourceVersion: listed.metadata.resourceVersion, timeoutSeconds: 60 },
        (type, obj) => {
          try {
            const typed = strict(obj, 'V1Pod', `watch event ${type}`);
            console.log(`event ${type} ${typed.metadata.name} ${typed.status?.phase}`);
            if ((type === 'ADDED' || type === 'MODIFIED') && typed.metadata.name === name) resolve(type);
          } catch (error) {
            reject(error);
          }
        },
        (error) => reject(error ?? new Error(`the watch ended without an event for pod ${name}`)))
      .then((controller) => {
        abort = controller;
        return api.createNamespacedPod({ namespace: ns, body: pod(name) });
      })
      .catch(reject);
  });
  try {
    const type = await withTimeout(seen, 60_000, 'watch');
    console.log(`watched ${type} ${name}`);
  } finally {
    abort?.abort();
  }
}

async function create(kc, api, ns, name) {
  const created = strict(await api.createNamespacedPod({ namespace: ns, body: pod(name) }), 'V1Pod', 'Pod');
  console.log(`created pod ${created.metadata.name} uid ${created.metadata.uid} phase ${created.status.phase} imageID ${created.status.containerStatuses[0].imageID}`);
  await api.createNamespacedConfigMap({
    namespace: ns,
    body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { 'created-by': '@kubernetes/client-node' } },
  });
  const read = strict(await api.readNamespacedConfigMap({ name, namespace: ns }), 'V1ConfigMap', 'ConfigMap');
  console.log(`created configmap ${read.metadata.name} data ${read.data['created-by']}`);
  await api.deleteNamespacedConfigMap({ name, namespace: ns });
  const deleted = strict(await api.deleteNamespacedPod({ name, namespace: ns }), 'V1Pod', 'deleted Pod');
  console.log(`deleted pod ${deleted.metadata.name}`);
}

// As a user would: read the pod and take its first running container.
async function firstRunningContainer(api, ns, name) {
  const read = strict(await api.readNamespacedPod({ name, namespace: ns }), 'V1Pod', 'Pod');
  const running = (read.status?.containerStatuses ?? []).filter((s) => s.state?.running);
  if (running.length === 0) throw new Error(`pod ${ns}/${name} has no running container`);
  return running[0].name;
}

async function exec(kc, api, ns, name) {
  const container = await firstRunningContainer(api, ns, name);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => { out += chunk; });
  stderr.on('data', (chunk) => { err += chunk; });
  const status = await withTimeout(new Promise((resolve, reject) => {
    new k8s.Exec(kc)
      .exec(ns, name, container, ['echo', 'hello', 'from', 'node'], stdout, stderr, null, false, resolve)
      .then((socket) => socket.on('error', reject))
      .catch(reject);
  }), 60_000, 'exec');
  strict(status, 'V1Status', 'exec status');
  console.log(`exec status ${status.status} output: ${out.trim()}`);
  if (status.status !== 'Success' || out.trim() !== 'hello from node') {
    throw new Error(`exec ended ${JSON.stringify(status)} with stdout ${JSON.stringify(out)} stderr ${JSON.stringify(err)}`);
  }
}

async function logs(kc, api, ns, name) {
  const container = await firstRunningContainer(api, ns, name);
  const text = await api.readNamespacedPodLog({ name, namespace: ns, container, tailLines: 2 });
  console.log(`logs: ${text.trim().replaceAll('\n', ' | ')}`);
  // Follow the log (Log.log pipes the response into a stream) until the sandbox's first heartbeat line, then stop.
  const followed = new PassThrough();
  let streamed = '';
  let controller;
  try {
    await withTimeout(new Promise((resolve, reject) => {
      followed.on('data', (chunk) => {
        streamed += chunk;
        if (streamed.includes('heartbeat 1')) resolve();
      });
      followed.on('error', reject);
      followed.on('end', () => reject(new Error(`the followed log ended: ${JSON.stringify(streamed)}`)));
      new k8s.Log(kc).log(ns, name, container, followed, { follow: true, tailLines: 4 })
        .then((c) => { controller = c; })
        .catch(reject);
    }), 60_000, 'log stream');
  } finally {
    controller?.abort();
  }
  console.log(`followed log: ${streamed.trim().replaceAll('\n', ' | ')}`);
  if (!text.includes('ready') || !streamed.includes('ready')) {
    throw new Error(`the log has no 'ready' line: ${JSON.stringify(text)} / ${JSON.stringify(streamed)}`);
  }
}

const operations = { list, cluster, watch, create, exec, logs };
const [kubeconfig, operation, ns, name] = process.argv.slice(2);
if (!kubeconfig || !ns || !operations[operation]) {
  process.stderr.write('usage: node client.mjs KUBECONFIG list|watch|create|exec|logs|cluster NAMESPACE [NAME]\n');
  process.exit(2);
}
const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfig);
const api = kc.makeApiClient(k8s.CoreV1Api);
try {
  await operations[operation](kc, api, ns, name);
  process.exit(0);
} catch (error) {
  const body = error?.body ? ` ${typeof error.body === 'string' ? error.body : JSON.stringify(error.body)}` : '';
  process.stderr.write(`@kubernetes/client-node ${operation} failed: ${error?.message ?? error}${body}\n`);
  process.exit(1);
}
