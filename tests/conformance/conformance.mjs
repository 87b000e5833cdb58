// Calls every method of client.containers and client.containers.files with
// the official openai SDK, through the gateway, exactly as a client would,
// and a sample of the rest of the API (models, chat completions, files,
// batches, responses, plain and streamed); then checks that the gateway's
// refusals reach the SDK as its own error classes, and that a quota
// refusal is not retried. Started by run.sh, which passes:
//   GW_BASE_URL         the gateway's http://127.0.0.1:PORT/v1 (before Prism)
//   GW_AUDIT            its audit log
//   GW_LOG              its standard error
//   GW_WORK             a scratch folder
//   GW_STREAM_BASE_URL  the second gateway's, before the stub (Responses)
//   GW_STREAM_AUDIT     its audit log
//   GW_STREAM_LOG       its standard error
//   GW_STUB_URL         the stub's http://127.0.0.1:PORT, to script it
//   GW_QUOTA_KEY        the key of the tenant allowed one live container
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

function auditRecords(file = process.env.GW_AUDIT) {
  const text = fs.readFileSync(file, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

// The gateway writes the audit line before it replies, so the line for a
// request that has been answered is already in the file. The client sees
// the upstream's x-request-id when it sent one (Prism sends none), else
// the gateway's.
function auditLine(requestId, file = process.env.GW_AUDIT) {
  if (!requestId) return null;
  // Requests' records only: the chain also has intent, segment and
  // checkpoint lines.
  return (
    auditRecords(file).find(
      (r) => r.type === 'request' && (r.request_id === requestId || r.upstream_request_id === requestId),
    ) ?? null
  );
}

// A call the gateway let through must be audited as such: the right
// operation, forwarded, and answered 200 by the upstream.
function assertAllowed(requestId, operation, method, urlPath, file = process.env.GW_AUDIT) {
  assert(requestId, 'the response has no x-request-id');
  const a = auditLine(requestId, file);
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

// ---- The rest of the API, through the same door: what the SDK sends
// goes up as Prism (the whole spec, --errors) accepts it, what comes back
// is what the SDK expects.

await check('models.list', async () => {
  const { data: page, request_id } = await client.models.list().withResponse();
  assert(Array.isArray(page.data) && page.data.length > 0 && page.data[0].id, `no models: ${JSON.stringify(page.data)}`);
  assertAllowed(request_id, 'listModels', 'GET', '/v1/models');
  return `${page.data.length} model(s), first ${page.data[0].id}`;
});

await check('chat.completions.create', async () => {
  const { data, request_id } = await client.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hello.' }] })
    .withResponse();
  assert(Array.isArray(data.choices) && data.object, `not a chat completion: ${JSON.stringify(data).slice(0, 300)}`);
  assertAllowed(request_id, 'createChatCompletion', 'POST', '/v1/chat/completions');
  return `object ${data.object}, ${data.choices.length} choice(s)`;
});

let batchFileId;
await check('files.create (multipart upload)', async () => {
  const line = JSON.stringify({
    custom_id: 'r1',
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] },
  });
  const file = await toFile(Buffer.from(line + '\n'), 'batch.jsonl', { type: 'application/jsonl' });
  const { data, request_id } = await client.files.create({ file, purpose: 'batch' }).withResponse();
  assert(data.id && data.object === 'file', `not a file: ${JSON.stringify(data)}`);
  batchFileId = data.id;
  assertAllowed(request_id, 'createFile', 'POST', '/v1/files');
  return `id ${data.id}, purpose ${data.purpose}`;
});

await check('batches.create (chat completions)', async () => {
  const { data, request_id } = await client.batches
    .create({ input_file_id: batchFileId ?? 'file-conformance', endpoint: '/v1/chat/completions', completion_window: '24h' })
    .withResponse();
  assert(data.id && data.object, `not a batch: ${JSON.stringify(data).slice(0, 300)}`);
  assertAllowed(request_id, 'createBatch', 'POST', '/v1/batches');
  return `id ${data.id}, endpoint ${data.endpoint}`;
});

await check('batches.create of /v1/responses -> PermissionDeniedError', () =>
  expectDenied(
    client.batches.create({ input_file_id: 'file-conformance', endpoint: '/v1/responses', completion_window: '24h' }),
    { cls: OpenAI.PermissionDeniedError, status: 403, type: 'policy_violation', code: 'batch_endpoint_not_allowed', param: 'endpoint' },
  ),
);

await check('responses.create with a 64g code_interpreter container -> PermissionDeniedError', () =>
  expectDenied(
    client.responses.create({
      model: 'gpt-5',
      input: 'Run some code.',
      tools: [{ type: 'code_interpreter', container: { type: 'auto', memory_limit: '64g' } }],
    }),
    { cls: OpenAI.PermissionDeniedError, status: 403, type: 'policy_violation', code: 'memory_limit_exceeded', param: 'tools[0].container.memory_limit' },
  ),
);

await check('responses.create (stream: true) with a 64g container -> PermissionDeniedError', () =>
  expectDenied(
    client.responses.create({
      model: 'gpt-5',
      input: 'Run some code.',
      stream: true,
      tools: [{ type: 'shell', environment: { type: 'container_auto', memory_limit: '64g' } }],
    }),
    { cls: OpenAI.PermissionDeniedError, status: 403, type: 'policy_violation', code: 'memory_limit_exceeded', param: 'tools[0].environment.memory_limit' },
  ),
);

// ---- Responses, through the second gateway: the stub answers as the
// spec's Response and ResponseStreamEvent say, scripted per call.

const streamClient = new OpenAI({ apiKey: API_KEY, baseURL: process.env.GW_STREAM_BASE_URL, maxRetries: 0, timeout: 15_000 });

async function stub(method, pathname, body) {
  const res = await fetch(`${process.env.GW_STUB_URL}${pathname}`, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  assert(res.ok, `stub ${method} ${pathname}: ${res.status} ${text}`);
  return JSON.parse(text);
}

function responseObject(status, output) {
  return {
    id: 'resp_conformance',
    object: 'response',
    created_at: 1767225600,
    status,
    model: 'gpt-5',
    output,
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [{ type: 'code_interpreter', container: { type: 'auto', memory_limit: '1g' } }],
    error: null,
    incomplete_details: null,
    instructions: null,
    metadata: {},
    temperature: 1,
    top_p: 1,
    usage: null,
  };
}

const ciCall = (cid) => ({ type: 'code_interpreter_call', id: 'ci_1', container_id: cid, code: 'print(1)', status: 'completed', outputs: [] });
const message = (text) => ({
  type: 'message',
  id: 'msg_1',
  role: 'assistant',
  status: 'completed',
  content: [{ type: 'output_text', text, annotations: [] }],
});

// What the gateway sent the stub for the last call: the decided body.
async function forwardedBody() {
  const reqs = await stub('GET', '/__stub/requests');
  return { req: reqs[reqs.length - 1], body: JSON.parse(reqs[reqs.length - 1].body) };
}

await check('responses.create (code_interpreter, the policy filling in the container)', async () => {
  await stub('POST', '/__stub/next', { json: responseObject('completed', [ciCall('cntr_conformance_1'), message('Hello.')]) });
  const { data, request_id } = await streamClient.responses
    .create({ model: 'gpt-5', input: 'Run some code.', tools: [{ type: 'code_interpreter', container: { type: 'auto' } }] })
    .withResponse();
  assert(data.output_text === 'Hello.', `output_text ${JSON.stringify(data.output_text)}`);
  const { body } = await forwardedBody();
  const c = body.tools?.[0]?.container;
  assert(c?.memory_limit === '1g' && c?.network_policy?.type === 'disabled', `forwarded container ${JSON.stringify(c)}`);
  const a = assertAllowed(request_id, 'createResponse', 'POST', '/v1/responses', process.env.GW_STREAM_AUDIT);
  assert(a.containers?.includes('cntr_conformance_1'), `the record names ${JSON.stringify(a.containers)}`);
  return `output_text ${JSON.stringify(data.output_text)}, forwarded container ${JSON.stringify(c)}, record names ${a.containers}`;
});

await check('responses.create (stream: true): events as they come', async () => {
  const pace = 400;
  const ev = (type, extra, delay) => ({ event: type, delay_ms: delay, data: { type, ...extra } });
  await stub('POST', '/__stub/next', {
    events: [
      ev('response.created', { sequence_number: 0, response: responseObject('in_progress', []) }, 0),
      ev('response.output_item.added', { sequence_number: 1, output_index: 0, item: ciCall('cntr_conformance_2') }, pace),
      ev('response.output_text.delta', { sequence_number: 2, item_id: 'msg_1', output_index: 1, content_index: 0, delta: 'Hel', logprobs: [] }, pace),
      ev('response.output_text.delta', { sequence_number: 3, item_id: 'msg_1', output_index: 1, content_index: 0, delta: 'lo.', logprobs: [] }, pace),
      ev('response.completed', { sequence_number: 4, response: responseObject('completed', [ciCall('cntr_conformance_2'), message('Hello.')]) }, pace),
    ],
  });
  const { data: stream, request_id } = await streamClient.responses
    .create({ model: 'gpt-5', input: 'Run some code.', stream: true, tools: [{ type: 'code_interpreter', container: { type: 'auto' } }] })
    .withResponse();
  const types = [];
  let text = '';
  let first = null;
  let done = null;
  for await (const event of stream) {
    first ??= Date.now();
    types.push(event.type);
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.completed') done = event.response;
  }
  assert(types.join() === 'response.created,response.output_item.added,response.output_text.delta,response.output_text.delta,response.completed', `events ${types}`);
  assert(text === 'Hello.' && done?.status === 'completed', `text ${JSON.stringify(text)}, final ${JSON.stringify(done?.status)}`);
  const { req, body } = await forwardedBody();
  assert(body.stream === true && body.tools?.[0]?.container?.memory_limit === '1g', `forwarded ${JSON.stringify(body)}`);
  // The first event reached the SDK while the stub was still sending.
  assert(first < req.sse_last_ms - pace, `first event at ${first}, the stub's last at ${req.sse_last_ms}`);
  const a = assertAllowed(request_id, 'createResponse', 'POST', '/v1/responses', process.env.GW_STREAM_AUDIT);
  assert(a.containers?.includes('cntr_conformance_2'), `the record names ${JSON.stringify(a.containers)}`);
  return `${types.length} events, the first ${req.sse_last_ms - first} ms before the stub's last; record names ${a.containers}`;
});

// ---- A quota is no rate limit: the SDK must give up at once.

await check('a live-container quota refusal is not retried by the SDK', async () => {
  // The SDK's defaults: it would retry a 429 twice, after Retry-After.
  const quotaClient = new OpenAI({ apiKey: process.env.GW_QUOTA_KEY, baseURL: process.env.GW_BASE_URL, timeout: 15_000 });
  const mine = () => auditRecords().filter((r) => r.type === 'request' && r.tenant === 'quota');
  await quotaClient.containers.create({ name: 'the one allowed' });
  const before = mine().length;
  const started = Date.now();
  let err = null;
  try {
    await quotaClient.containers.create({ name: 'one too many' });
  } catch (e) {
    err = e;
  }
  const elapsed = Date.now() - started;
  if (!err) throw new Error('the second create succeeded, want RateLimitError 429');
  if (!(err instanceof OpenAI.RateLimitError)) throw err;
  const problems = [];
  if (err.code !== 'rate_limit_exceeded') problems.push(`code ${err.code}`);
  if (err.headers.get('x-should-retry') !== 'false') problems.push(`x-should-retry ${err.headers.get('x-should-retry')}`);
  if (elapsed >= 1000) problems.push(`threw after ${elapsed} ms`);
  const after = mine().slice(before);
  if (after.length !== 1) problems.push(`${after.length} requests reached the gateway, want 1`);
  else if (after[0].status !== 429) problems.push(`audited ${after[0].status}`);
  if (problems.length) throw new Error(`${problems.join('; ')} — ${describe(err)}`);
  return `RateLimitError 429 after ${elapsed} ms, one request (x-should-retry: false, retry-after ${err.headers.get('retry-after')})`;
});

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
  for (const [what, file] of [
    ['audit log', process.env.GW_AUDIT],
    ['gateway log', process.env.GW_LOG],
    ['second audit log', process.env.GW_STREAM_AUDIT],
    ['second gateway log', process.env.GW_STREAM_LOG],
  ]) {
    const text = fs.readFileSync(file, 'utf8');
    if (text.includes(API_KEY)) leaks.push(`API key in the ${what}`);
    if (text.includes(SECRET_VALUE)) leaks.push(`domain secret in the ${what}`);
  }
  assert(leaks.length === 0, leaks.join('; '));
  return `${auditRecords().length + auditRecords(process.env.GW_STREAM_AUDIT).length} audit lines checked`;
});

console.log(`conformance: ${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
