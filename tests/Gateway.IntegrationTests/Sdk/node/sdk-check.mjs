// Drives the gateway with the official OpenAI Node SDK, unchanged. Usage: node sdk-check.mjs BASE_URL KEY OTHER_MODEL_KEY
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [baseURL, key, otherKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: key, maxRetries: 0 });
const results = [];
const check = async (name, fn) => { await fn(); results.push(name); };

await check('chat', async () => {
  const r = await client.chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 4 });
  assert.equal(r.model, 'qwen');
  assert.equal(r.object, 'chat.completion');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.usage.completion_tokens, 4);
});

await check('chat stream without usage', async () => {
  const stream = await client.chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, stream: true });
  let text = '', chunks = 0, usageChunks = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.model, 'qwen');
    chunks++;
    if (chunk.usage) usageChunks++;
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.equal(usageChunks, 0);
  assert.ok(chunks >= 6);
  assert.ok(text.length > 0);
});

await check('chat stream with include_usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'qwen', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, stream: true, stream_options: { include_usage: true },
  });
  const usage = [];
  for await (const chunk of stream) {
    assert.equal(chunk.model, 'qwen');
    if (chunk.usage) usage.push(chunk);
  }
  assert.equal(usage.length, 1);
  assert.equal(usage[0].choices.length, 0);
  assert.equal(usage[0].usage.completion_tokens, 5);
});

await check('completions', async () => {
  const r = await client.completions.create({ model: 'qwen', prompt: 'Once upon', max_tokens: 3 });
  assert.equal(r.model, 'qwen');
  assert.equal(r.object, 'text_completion');
  assert.ok(r.choices[0].text.length > 0);
});

await check('embeddings float', async () => {
  const r = await client.embeddings.create({ model: 'qwen', input: ['a', 'b'], encoding_format: 'float' });
  assert.equal(r.model, 'qwen');
  assert.equal(r.data.length, 2);
  assert.ok(Array.isArray(r.data[0].embedding) && r.data[0].embedding.length > 0);
});

await check('embeddings base64', async () => {
  // With no encoding_format the SDK asks for base64 and decodes it to numbers itself.
  const decoded = await client.embeddings.create({ model: 'qwen', input: 'a' });
  assert.ok(Array.isArray(decoded.data[0].embedding) && decoded.data[0].embedding.length > 0);
  const raw = await client.embeddings.create({ model: 'qwen', input: 'a', encoding_format: 'base64' });
  assert.equal(typeof raw.data[0].embedding, 'string');
  assert.equal(Buffer.from(raw.data[0].embedding, 'base64').length, decoded.data[0].embedding.length * 4);
});

await check('models list', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes('qwen'), ids.join(','));
  const other = new OpenAI({ baseURL, apiKey: otherKey, maxRetries: 0 });
  const otherIds = [];
  for await (const m of other.models.list()) otherIds.push(m.id);
  assert.deepEqual(otherIds, ['other']);
});

await check('models retrieve', async () => {
  const m = await client.models.retrieve('qwen');
  assert.equal(m.id, 'qwen');
  assert.equal(m.object, 'model');
  // A model the key may not use is as absent as in its list.
  const other = new OpenAI({ baseURL, apiKey: otherKey, maxRetries: 0 });
  await assert.rejects(() => other.models.retrieve('qwen'), (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
});

const expectError = async (cls, status, code, fn) => {
  try { await fn(); } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e?.constructor?.name}: ${e?.message}`);
    assert.equal(e.status, status);
    assert.equal(e.code, code);
    return;
  }
  assert.fail(`expected ${cls.name}`);
};

await check('401 AuthenticationError', () => expectError(OpenAI.AuthenticationError, 401, 'invalid_api_key', () =>
  new OpenAI({ baseURL, apiKey: 'ml-' + '0'.repeat(64), maxRetries: 0 }).chat.completions.create({ model: 'qwen', messages: [] })));
await check('403 PermissionDeniedError', () => expectError(OpenAI.PermissionDeniedError, 403, 'model_not_allowed', () =>
  new OpenAI({ baseURL, apiKey: otherKey, maxRetries: 0 }).chat.completions.create({ model: 'qwen', messages: [] })));
await check('404 NotFoundError', () => expectError(OpenAI.NotFoundError, 404, 'model_not_found', () =>
  client.chat.completions.create({ model: 'no-such-model', messages: [] })));
await check('400 BadRequestError', () => expectError(OpenAI.BadRequestError, 400, 'invalid_request', () =>
  client.chat.completions.create({ model: 'qwen', messages: [], stream: 'yes' })));

console.log(JSON.stringify({ ok: true, checks: results }));
