// Calls every method of client.containers and client.containers.files with
// the official openai SDK, through the gateway, exactly as a client would;
// then checks that the gateway's refusals reach the SDK as its own error
// classes. Started by run.sh, which passes:
//   GW_BASE_URL  the gateway's http://127.0.0.1:PORT/v1
//   GW_AUDIT     the gateway's audit log
//   GW_LOG       the gateway's standard error
//   GW_WORK      a scratch folder
// Prints one PASS or FAIL line per check and exits 1 if any failed.

import fs from 'node:fs';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';

const API_KEY = 'sk-test-conformance';
// Sent as a domain secret; it must reach the upstream and no log.
const SECRET_VALUE = 'conformance-secret-0b9e4d';

const client = new OpenAI({
  apiKey: API_KEY,
  baseURL: process.env.GW_BASE_URL,
  // A retried request would hide a first answer that was wrong, and send
  // a second request the audit log then has to explain.
  maxRetries: 0,
  timeout: 15_000,
});

let passed = 0;
let failures = 0;

async function check(name, fn) {
  try {
    const detail = await fn();
    passed++;
    console.log(`PASS  ${name}${detail ? ` — ${detail}` : ''}`);
  } catch (err) {
    failures++;
    console.log(`FAIL  ${name} — ${describe(err)}`);
  }
}

// For an HTTP error, everything needed to tell whether the gateway or the
// upstream is at fault: status, body, and the gateway's audit line.
function describe(err) {
  if (err instanceof OpenAI.APIError && err.status) {
    const audit = auditLine(err.requestID);
    return (
      `${err.constructor.name} ${err.status}: ${err.message}` +
      ` (content-type ${err.headers?.get('content-type') ?? 'none'}, x-request-id ${err.requestID ?? 'none'})` +
      `; audit: ${audit ? JSON.stringify(audit) : 'no line for this request id'}`
    );
  }
  if (err instanceof Error) {
    // A connection error's causes (the SDK's, then fetch's) say what
    // happened to the socket.
    let text = `${err.constructor.name}: ${err.message}`;
    for (let c = err.cause; c; c = c.cause) text += ` <- ${c.code ? `${c.code} ` : ''}${c.message ?? c}`;
    return text;
  }
  return String(err);
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function auditRecords() {
  const text = fs.readFileSync(process.env.GW_AUDIT, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

// The gateway writes the audit line before it replies, so the line for a
// request that has been answered is already in the file. The client sees
// the upstream's x-request-id when it sent one (Prism sends none), else
// the gateway's.
function auditLine(requestId) {
  if (!requestId) return null;
  // Requests' records only: the chain also has intent, segment and
  // checkpoint lines.
  return (
    auditRecords().find(
      (r) => r.type === 'request' && (r.request_id === requestId || r.upstream_request_id === requestId),
    ) ?? null
  );
}

// A call the gateway let through must be audited as such: the right
// operation, forwarded, and answered 200 by the upstream.
function assertAllowed(requestId, operation, method, urlPath) {
  assert(requestId, 'the response has no x-request-id');
  const a = auditLine(requestId);
  assert(a, `no audit line with request_id ${requestId}`);
  const problems = [];
  if (a.operation !== operation) problems.push(`operation ${JSON.stringify(a.operation)}, want ${operation}`);
  if (a.method !== method) problems.push(`method ${a.method}, want ${method}`);
  if (a.path?.split('?')[0] !== urlPath) problems.push(`path ${a.path}, want ${urlPath}`);
  if (a.decision !== 'allow') problems.push(`decision ${a.decision}, want allow`);
  if (a.status !== 200 || a.upstream_status !== 200)
    problems.push(`status ${a.status}/upstream_status ${a.upstream_status}, want 200/200`);
  assert(problems.length === 0, `SDK call succeeded but the audit line is off: ${problems.join('; ')}: ${JSON.stringify(a)}`);
  return a;
}

// Violations the gateway logged (on_upstream_violation is "log") do not
// fail a check, but are shown: in block mode each would have been a 502.
function violationsNote(a) {
  return a.violations?.length ? `; gateway logged violations ${JSON.stringify(a.violations)}` : '';
}

// A refusal must come back as the SDK's own class with the gateway's error
// fields, be audited as a denial with the same message, and never reach
// the upstream.
async function expectDenied(promise, { cls, status, type, code, param }) {
  let err = null;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  if (!err) throw new Error(`succeeded, want ${cls.name} ${status}`);
  if (!(err instanceof cls)) throw err;
  const e = err.error ?? {};
  const problems = [];
  if (err.status !== status) problems.push(`status ${err.status}, want ${status}`);
  if (typeof e.message !== 'string' || !e.message) problems.push('error.message is empty');
  else if (err.message !== `${status} ${e.message}`) problems.push(`SDK message ${JSON.stringify(err.message)} is not the gateway's`);
  if (err.type !== type) problems.push(`type ${JSON.stringify(err.type)}, want ${type}`);
  if (err.code !== code) problems.push(`code ${JSON.stringify(err.code)}, want ${code}`);
  if (err.param !== param) problems.push(`param ${JSON.stringify(err.param)}, want ${param}`);
  const a = auditLine(err.requestID);
  if (!a) problems.push(`no audit line for x-request-id ${err.requestID}`);
  else {
    if (a.decision !== 'deny') problems.push(`audit decision ${a.decision}, want deny`);
    if (a.status !== status) problems.push(`audit status ${a.status}`);
    if (a.code !== code || a.param !== param) problems.push(`audit code/param ${a.code}/${a.param}`);
    if (a.message !== e.message) problems.push(`audit message ${JSON.stringify(a.message)} differs from the reply's`);
    if (a.upstream_status != null) problems.push(`forwarded anyway (upstream_status ${a.upstream_status})`);
  }
  if (problems.length) throw new Error(`${problems.join('; ')} — ${describe(err)}`);
  return `${err.constructor.name} ${err.status} ${err.code} param=${err.param}: ${JSON.stringify(e.message)}`;
}

// ---- Every SDK method, through the gateway.

let containerId;
let fileId;

await check('containers.create', async () => {
  // Every field the contract has, so Prism's schema check sees all of them
  // as the gateway forwards them.
  const { data, request_id } = await client.containers
    .create({
      name: 'conformance',
      memory_limit: '4g',
      expires_after: { anchor: 'last_active_at', minutes: 30 },
      file_ids: ['file-conformance-1'],
      skills: [{ type: 'skill_reference', skill_id: 'openai-spreadsheets', version: 'latest' }],
      network_policy: {
        type: 'allowlist',
        allowed_domains: ['api.example.com'],
        domain_secrets: [{ domain: 'api.example.com', name: 'EXAMPLE_TOKEN', value: SECRET_VALUE }],
      },
    })
    .withResponse();
  assert(typeof data.id === 'string' && data.id, `no container id in ${JSON.stringify(data)}`);
  containerId = data.id;
  const a = assertAllowed(request_id, 'CreateContainer', 'POST', '/v1/containers');
  return `id ${data.id}, memory_limit ${data.memory_limit} (forwarded ${a.memory_limit})${violationsNote(a)}`;
});

// The id Prism returned, or a plausible one if create failed, so that the
// other methods are still exercised.
containerId ??= 'cntr_conformance';

await check('containers.retrieve', async () => {
  const { data, request_id } = await client.containers.retrieve(containerId).withResponse();
  assert(data.id && data.object, `not a container: ${JSON.stringify(data)}`);
  const a = assertAllowed(request_id, 'RetrieveContainer', 'GET', `/v1/containers/${containerId}`);
  return `id ${data.id}, status ${data.status}${violationsNote(a)}`;
});

await check('containers.list (first page)', async () => {
  const { data: page, request_id } = await client.containers.list({ limit: 1, order: 'asc' }).withResponse();
  assert(Array.isArray(page.data) && page.data.length > 0, `no items: ${JSON.stringify(page.data)}`);
  const a = assertAllowed(request_id, 'ListContainers', 'GET', '/v1/containers');
  return `${page.data.length} item(s), has_more ${page.has_more}${violationsNote(a)}`;
});

await check('containers.list (auto-pagination across pages)', async () => {
  // Prism always says has_more: true, so the iterator would never end;
  // three items at one per page means two follow-up requests with ?after=.
  let n = 0;
  for await (const c of client.containers.list({ limit: 1 })) {
    assert(c.id, `item without id: ${JSON.stringify(c)}`);
    if (++n === 3) break;
  }
  assert(n === 3, `only ${n} item(s)`);
  return `${n} items over 3 pages`;
});

await check('containers.list with an invalid query parameter is refused', async () => {
  // Either the gateway checks the query itself (400) or it forwards it and
  // Prism refuses it (422); a 200 means the query was dropped unchecked.
  // Prism neither logs nor echoes query strings, so that valid ones (limit,
  // after) arrive intact is not observable here.
  try {
    await client.containers.list({ order: 'sideways' });
  } catch (err) {
    if (err instanceof OpenAI.BadRequestError || err instanceof OpenAI.UnprocessableEntityError)
      return `${err.constructor.name} ${err.status} from the ${err.status === 400 ? 'gateway' : 'upstream'}: ${JSON.stringify(err.error?.message ?? err.error?.title)}`;
    throw err;
  }
  throw new Error('order=sideways came back 200: neither the gateway nor the upstream saw the query');
});

await check('containers.files.create (file_id, JSON)', async () => {
  const { data, request_id } = await client.containers.files
    .create(containerId, { file_id: 'file-conformance-1' })
    .withResponse();
  assert(data.id && data.path, `not a container file: ${JSON.stringify(data)}`);
  fileId = data.id;
  const a = assertAllowed(request_id, 'CreateContainerFile', 'POST', `/v1/containers/${containerId}/files`);
  return `id ${data.id}, path ${data.path}${violationsNote(a)}`;
});

fileId ??= 'cfile_conformance';

await check('containers.files.create (upload from a buffer, multipart)', async () => {
  const file = await toFile(Buffer.from('hello from the conformance suite\n'), 'hello.txt', { type: 'text/plain' });
  const { data, request_id } = await client.containers.files.create(containerId, { file }).withResponse();
  assert(data.id, `not a container file: ${JSON.stringify(data)}`);
  const a = assertAllowed(request_id, 'CreateContainerFile', 'POST', `/v1/containers/${containerId}/files`);
  return `id ${data.id}${violationsNote(a)}`;
});

await check('containers.files.create (upload from a file stream, multipart)', async () => {
  // Large enough to need several reads, so the body goes out in pieces.
  const p = path.join(process.env.GW_WORK, 'upload.csv');
  fs.writeFileSync(p, 'n,square\n' + Array.from({ length: 20000 }, (_, i) => `${i},${i * i}`).join('\n') + '\n');
  const { data, request_id } = await client.containers.files
    .create(containerId, { file: fs.createReadStream(p) })
    .withResponse();
  assert(data.id, `not a container file: ${JSON.stringify(data)}`);
  const a = assertAllowed(request_id, 'CreateContainerFile', 'POST', `/v1/containers/${containerId}/files`);
  return `id ${data.id}, ${fs.statSync(p).size} bytes sent${violationsNote(a)}`;
});

await check('containers.files.retrieve', async () => {
  const { data, request_id } = await client.containers.files
    .retrieve(fileId, { container_id: containerId })
    .withResponse();
  assert(data.id && data.container_id, `not a container file: ${JSON.stringify(data)}`);
  const a = assertAllowed(request_id, 'RetrieveContainerFile', 'GET', `/v1/containers/${containerId}/files/${fileId}`);
  return `id ${data.id}, bytes ${data.bytes}${violationsNote(a)}`;
});

await check('containers.files.list (and iterate 3 pages)', async () => {
  const { data: page, request_id } = await client.containers.files.list(containerId, { limit: 1 }).withResponse();
  const a = assertAllowed(request_id, 'ListContainerFiles', 'GET', `/v1/containers/${containerId}/files`);
  let n = 0;
  for await (const f of page) {
    assert(f.id, `item without id: ${JSON.stringify(f)}`);
    if (++n === 3) break;
  }
  assert(n === 3, `only ${n} item(s)`);
  return `first page ${page.data.length} item(s), iterated ${n}${violationsNote(a)}`;
});

await check('containers.files.content.retrieve', async () => {
  const res = await client.containers.files.content.retrieve(fileId, { container_id: containerId });
  const body = Buffer.from(await res.arrayBuffer());
  assert(res.status === 200, `status ${res.status}`);
  const a = assertAllowed(
    res.headers.get('x-request-id'),
    'RetrieveContainerFileContent',
    'GET',
    `/v1/containers/${containerId}/files/${fileId}/content`,
  );
  return `${body.length} byte(s), content-type ${res.headers.get('content-type') ?? 'none'}${violationsNote(a)}`;
});

await check('containers.files.delete', async () => {
  const { data, request_id } = await client.containers.files
    .delete(fileId, { container_id: containerId })
    .withResponse();
  const a = assertAllowed(request_id, 'DeleteContainerFile', 'DELETE', `/v1/containers/${containerId}/files/${fileId}`);
  return `resolved to ${data === undefined ? 'nothing (void)' : JSON.stringify(data)}${violationsNote(a)}`;
});

await check('containers.delete', async () => {
  const { data, request_id } = await client.containers.delete(containerId).withResponse();
  const a = assertAllowed(request_id, 'DeleteContainer', 'DELETE', `/v1/containers/${containerId}`);
  return `resolved to ${data === undefined ? 'nothing (void)' : JSON.stringify(data)}${violationsNote(a)}`;
});

// ---- Refusals, as the SDK reports them.

await check('create over the memory cap -> PermissionDeniedError', () =>
  expectDenied(client.containers.create({ name: 'too big', memory_limit: '16g' }), {
    cls: OpenAI.PermissionDeniedError,
    status: 403,
    type: 'policy_violation',
    code: 'memory_limit_exceeded',
    param: 'memory_limit',
  }),
);

await check('create with an unknown field -> BadRequestError', () =>
  // The SDK's types would not allow this field; a client built from an
  // older or newer spec could still send it.
  expectDenied(client.containers.create({ name: 'x', gpu_count: 1 }), {
    cls: OpenAI.BadRequestError,
    status: 400,
    type: 'invalid_request_error',
    code: 'unknown_parameter',
    param: 'gpu_count',
  }),
);

await check('create with memory_limit "2g" -> BadRequestError', () =>
  expectDenied(client.containers.create({ name: 'x', memory_limit: '2g' }), {
    cls: OpenAI.BadRequestError,
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_value',
    param: 'memory_limit',
  }),
);

// ---- What the gateway relays and what it keeps to itself.

await check('an upstream 401 is relayed as it came', async () => {
  // Without Authorization the gateway has nothing to refuse, and Prism
  // answers 401 with an application/problem+json body of its own.
  try {
    await client.containers.retrieve(containerId, { headers: { Authorization: null } });
  } catch (err) {
    if (!(err instanceof OpenAI.AuthenticationError)) throw err;
    const ct = err.headers.get('content-type') ?? '';
    assert(ct.startsWith('application/problem+json'), `content-type ${ct || 'none'}, want Prism's application/problem+json — ${describe(err)}`);
    assert(err.error?.title, `body is not Prism's problem document — ${describe(err)}`);
    return `AuthenticationError 401, ${ct}: ${JSON.stringify(err.error.title)}`;
  }
  throw new Error('succeeded without an API key');
});

await check('no API key or domain secret in the audit log or the gateway log', () => {
  const leaks = [];
  for (const [what, file] of [['audit log', process.env.GW_AUDIT], ['gateway log', process.env.GW_LOG]]) {
    const text = fs.readFileSync(file, 'utf8');
    if (text.includes(API_KEY)) leaks.push(`API key in the ${what}`);
    if (text.includes(SECRET_VALUE)) leaks.push(`domain secret in the ${what}`);
  }
  assert(leaks.length === 0, leaks.join('; '));
  return `${auditRecords().length} audit lines checked`;
});

console.log(`conformance: ${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
