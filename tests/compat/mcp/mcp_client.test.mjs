// The official MCP TypeScript SDK's client against the real deltamemory
// binary, over stdio (`deltamemory mcp`) and over streamable HTTP
// (POST /mcp of `deltamemory serve`).  Over each transport: the ten tools
// are listed with strict input schemas, add_memory then search_memories
// finds the memory, get_context holds the profile fact extracted from the
// turn, and an unknown argument comes back as a tool error.
//
// Environment (tests/compat/CMakeLists.txt): DM_CLI, DM_WRITE_TINYMODEL,
// DM_TEST_TMPDIR, NODE_PATH (the npm packages).  A missing package is a
// failure, never a skip.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`compat_mcp: ${name} is not set (run the test through ctest)`);
    process.exit(1);
  }
  return v;
}

const cli = need("DM_CLI");
const writeTiny = need("DM_WRITE_TINYMODEL");
const nodePath = need("NODE_PATH");

// ESM imports of bare names ignore NODE_PATH: resolve through require.
const require = createRequire(path.join(nodePath, "/"));
let Client, StdioClientTransport, StreamableHTTPClientTransport;
try {
  ({ Client } = require("@modelcontextprotocol/sdk/client/index.js"));
  ({ StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js"));
  ({ StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js"));
} catch (e) {
  console.error(`compat_mcp: @modelcontextprotocol/sdk is not installed in ${nodePath} ` +
                `(run tools/install-deps.sh --tests): ${e.message}`);
  process.exit(1);
}

const tmpRoot = process.env.DM_TEST_TMPDIR || "/tmp";
fs.mkdirSync(tmpRoot, { recursive: true });
const tmp = fs.mkdtempSync(path.join(tmpRoot, "compat_mcp."));
const model = path.join(tmp, "tiny.dmm");
execFileSync(writeTiny, [model], { stdio: ["ignore", "inherit", "inherit"] });

const TOOLS = ["add_memory", "search_memories", "get_context", "get_profile",
               "list_memories", "get_memory", "update_memory", "delete_memory",
               "memory_history", "search_graph"];

function text(result) {
  assert.ok(Array.isArray(result.content) && result.content.length >= 1,
            `a tool result has content: ${JSON.stringify(result)}`);
  assert.equal(result.content[0].type, "text");
  return result.content[0].text;
}

// The checks every transport must pass; user is the user of the calls
// (undefined = the connection's default user).
async function exercise(client, label, user) {
  const who = user ? { user_id: user } : {};
  const info = client.getServerVersion();
  assert.equal(info.name, "deltamemory", `${label}: serverInfo.name`);

  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), [...TOOLS].sort(),
                   `${label}: the ten tools`);
  for (const t of tools) {
    assert.equal(t.inputSchema.type, "object", `${label}: ${t.name} schema type`);
    assert.equal(t.inputSchema.additionalProperties, false, `${label}: ${t.name} is strict`);
    assert.ok(t.description && t.description.length > 20, `${label}: ${t.name} description`);
    assert.equal(typeof t.annotations?.readOnlyHint, "boolean", `${label}: ${t.name} hints`);
  }
  const add = tools.find((t) => t.name === "add_memory");
  assert.deepEqual(add.inputSchema.required, ["text"], `${label}: add_memory requires text`);
  assert.equal(add.inputSchema.properties.text.type, "string");
  assert.equal(tools.find((t) => t.name === "delete_memory").annotations.destructiveHint, true);
  assert.equal(tools.find((t) => t.name === "search_memories").annotations.readOnlyHint, true);

  let r = await client.callTool({ name: "add_memory",
                                  arguments: { ...who, text: "I live in Austin." } });
  assert.ok(!r.isError, `${label}: add_memory: ${text(r)}`);
  const id = text(r).match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/)?.[0];
  assert.ok(id, `${label}: add_memory names the id: ${text(r)}`);
  r = await client.callTool({ name: "add_memory", arguments: {
    ...who, text: "My favourite breakfast is blueberry pancakes.", infer: false } });
  assert.ok(!r.isError, `${label}: second add_memory: ${text(r)}`);

  r = await client.callTool({ name: "search_memories",
                              arguments: { ...who, query: "blueberry pancakes", limit: 5 } });
  assert.ok(!r.isError, `${label}: search_memories: ${text(r)}`);
  const found = JSON.parse(text(r)).results;
  assert.ok(found.length >= 1, `${label}: search finds something`);
  assert.match(found[0].text, /blueberry pancakes/, `${label}: the best hit`);
  assert.equal(typeof found[0].score, "number");

  r = await client.callTool({ name: "get_context",
                              arguments: { ...who, query: "where do I live?" } });
  assert.ok(!r.isError, `${label}: get_context: ${text(r)}`);
  assert.match(text(r), /About the user/, `${label}: the context has a profile section`);
  assert.match(text(r), /Austin/, `${label}: the profile holds the city`);

  r = await client.callTool({ name: "get_memory", arguments: { ...who, id } });
  assert.ok(!r.isError, `${label}: get_memory: ${text(r)}`);
  assert.equal(JSON.parse(text(r)).text, "I live in Austin.");

  r = await client.callTool({ name: "search_memories",
                              arguments: { ...who, query: "x", colour: "blue" } });
  assert.equal(r.isError, true, `${label}: an unknown argument is a tool error`);
  assert.match(text(r), /Unrecognized key\(s\).*colour/, `${label}: it says which`);

  r = await client.callTool({ name: "add_memory", arguments: { ...who } });
  assert.equal(r.isError, true, `${label}: a missing argument is a tool error`);
  assert.match(text(r), /"text" is required/);

  await client.ping();
  console.log(`ok - ${label}`);
}

async function overStdio() {
  const transport = new StdioClientTransport({
    command: cli,
    args: ["--data", path.join(tmp, "stdio"), "--model", model, "mcp", "--user", "u1"],
    // The child gets only a few variables by default; pass what the
    // sanitizers and the temporary files need.
    env: { ...process.env },
    stderr: "inherit",
  });
  const client = new Client({ name: "compat-test", version: "1.0.0" });
  await client.connect(transport);
  try {
    await exercise(client, "stdio", undefined);
    // Another user, named per call, sees nothing of u1's memories.
    const r = await client.callTool({ name: "search_memories",
                                      arguments: { user_id: "u2", query: "Austin" } });
    assert.deepEqual(JSON.parse(text(r)).results, [], "stdio: users are separate");
  } finally {
    await client.close();
  }
}

function startServer(dir) {
  return new Promise((resolve, reject) => {
    const child = spawn(cli, ["--data", dir, "--model", model, "serve", "--port", "0"],
                        { stdio: ["ignore", "inherit", "pipe"], env: process.env });
    let err = "";
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 60000);
    child.stderr.on("data", (b) => {
      process.stderr.write(b);
      err += b.toString();
      const m = err.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}: ${err}`));
    });
  });
}

async function overHttp() {
  const { child, port } = await startServer(path.join(tmp, "http"));
  const exited = new Promise((res) => child.on("exit", (code, sig) => res({ code, sig })));
  try {
    const url = new URL(`http://127.0.0.1:${port}/mcp`);
    // The user comes from the per-call argument here...
    let client = new Client({ name: "compat-test", version: "1.0.0" });
    let transport = new StreamableHTTPClientTransport(url);
    await client.connect(transport);
    await exercise(client, "streamable HTTP", "u1");
    await transport.terminateSession(); // a DELETE: 405 is tolerated
    await client.close();

    // ... and from the connection's header here.
    client = new Client({ name: "compat-test", version: "1.0.0" });
    transport = new StreamableHTTPClientTransport(url, {
      requestInit: { headers: { "X-DeltaMemory-User": "u1" } } });
    await client.connect(transport);
    const r = await client.callTool({ name: "list_memories", arguments: {} });
    assert.ok(!r.isError, `HTTP header user: ${text(r)}`);
    assert.equal(JSON.parse(text(r)).results.length, 2, "HTTP: the header names the user");
    await client.close();

    // Raw protocol facts the SDK does not surface.
    let res = await fetch(url, { method: "POST", headers: {
      "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) });
    assert.equal(res.status, 202, "a notification is answered 202");
    assert.equal(await res.text(), "", "with an empty body");
    res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "no/such" }) });
    assert.equal(res.status, 200);
    const j = await res.json();
    assert.equal(j.id, 7);
    assert.equal(j.error.code, -32601, "an unknown method is -32601");
    res = await fetch(url, { method: "GET" });
    assert.equal(res.status, 405, "GET /mcp is 405");
    console.log("ok - streamable HTTP raw protocol");
  } finally {
    child.kill("SIGTERM");
    const { code, sig } = await exited;
    assert.ok(code === 0 || sig === "SIGTERM", `serve stopped cleanly (${code}, ${sig})`);
  }
}

try {
  await overStdio();
  await overHttp();
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log("compat_mcp: all passed");
  process.exit(0);
} catch (e) {
  console.error(`compat_mcp: FAILED: ${e.stack || e}`);
  process.exit(1);
}
