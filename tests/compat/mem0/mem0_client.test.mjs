// Mem0's MemoryClient (npm mem0ai 3.3.1), unchanged, against the real
// `deltamemory serve`: ping at construction, add, search, getAll, get,
// update, history, delete, deleteAll, users, deleteUsers, batchUpdate and
// batchDelete, each checked for what it returns.  Exits non-zero on the
// first failure; stops the server with SIGTERM and checks it exits 0.
//
// Environment (tests/compat/CMakeLists.txt): DM_CLI, DM_WRITE_TINYMODEL,
// DM_TEST_TMPDIR, MEM0_TELEMETRY=false.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

function die(msg) {
  console.log(`compat_mem0: FAIL: ${msg}`);
  process.exitCode = 1;
  throw new Error(msg);
}

function check(cond, msg) {
  if (!cond) die(msg);
}

for (const v of ["DM_CLI", "DM_WRITE_TINYMODEL", "DM_TEST_TMPDIR"]) {
  if (!process.env[v]) {
    console.log(`compat_mem0: FAIL: ${v} is not set (run through ctest)`);
    process.exit(1);
  }
}
if (process.env.MEM0_TELEMETRY !== "false") {
  console.log("compat_mem0: FAIL: MEM0_TELEMETRY must be \"false\" before the client loads");
  process.exit(1);
}

// The client's complaints are failures: capture console.error and warn
// before the module is loaded.
const complaints = [];
const origError = console.error;
const origWarn = console.warn;
console.error = (...a) => {
  complaints.push(a.map(String).join(" "));
  origError(...a);
};
console.warn = (...a) => {
  complaints.push(a.map(String).join(" "));
  origWarn(...a);
};

let mem0;
try {
  mem0 = await import("mem0ai");
} catch (e) {
  console.log(
    "compat_mem0: FAIL: the npm package mem0ai is not installed " +
      "(run tools/install-deps.sh --tests): " + e.message);
  process.exit(1);
}
const { MemoryClient, MemoryNotFoundError, ValidationError } = mem0;

mkdirSync(process.env.DM_TEST_TMPDIR, { recursive: true });
const tmp = mkdtempSync(join(process.env.DM_TEST_TMPDIR, "compat_mem0-"));
const model = join(tmp, "tiny.dmm");
const w = spawnSync(process.env.DM_WRITE_TINYMODEL, [model], { encoding: "utf8" });
if (w.status !== 0) {
  console.log(`compat_mem0: FAIL: write_tinymodel: ${w.stderr}`);
  process.exit(1);
}

// Start the server and read its port from stderr.
const server = spawn(
  process.env.DM_CLI,
  ["--data", join(tmp, "db"), "--model", model, "serve", "--port", "0"],
  { stdio: ["ignore", "inherit", "pipe"] });
let serverErr = "";
const port = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("no port within 30 s: " + serverErr)), 30000);
  server.stderr.on("data", (d) => {
    serverErr += d.toString();
    const m = serverErr.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    if (m) {
      clearTimeout(timer);
      resolve(Number(m[1]));
    }
  });
  server.on("exit", (code) => reject(new Error(`server exited with ${code}: ${serverErr}`)));
}).catch((e) => {
  console.log(`compat_mem0: FAIL: ${e.message}`);
  server.kill("SIGKILL");
  process.exit(1);
});
const exited = new Promise((resolve) => server.on("exit", (code, sig) => resolve({ code, sig })));

async function expectThrow(fn, cls, what) {
  try {
    await fn();
  } catch (e) {
    check(e instanceof cls, `${what}: threw ${e.name}: ${e.message}, want ${cls.name}`);
    return e;
  }
  die(`${what}: did not throw`);
}

const steps = [];
async function step(name, fn) {
  await fn();
  steps.push(name);
}

let failed = false;
try {
  const client = new MemoryClient({ apiKey: "test-key", host: `http://127.0.0.1:${port}` });
  await step("ping", async () => {
    await client.ping();
    check(client.organizationId && client.projectId, "ping gave no org_id / project_id");
  });

  let added;
  await step("add", async () => {
    added = await client.add(
      [
        { role: "user", content: "My favourite sport is rock climbing in the mountains." },
        { role: "assistant", content: "Rock climbing sounds great." },
      ],
      { userId: "alice", agentId: "coach", runId: "run-1", metadata: { source: "compat" } });
    check(added.status === "SUCCEEDED", `add status ${added.status}`);
    check(typeof added.eventId === "string", "add has no eventId");
    check(Array.isArray(added.results) && added.results.length === 2,
          `add results ${JSON.stringify(added.results)}`);
    check(added.results[0].event === "ADD" && added.results[0].data.memory.includes("climbing"),
          `add result ${JSON.stringify(added.results[0])}`);
    const b = await client.add("Bob drinks espresso every morning.", { userId: "bob", infer: false });
    check(b.results.length === 1, "string add");
  });
  const id = added.results[0].id;

  await step("search", async () => {
    const r = await client.search("rock climbing", { filters: { user_id: "alice" } });
    check(Array.isArray(r.results) && r.results.length >= 1, `search ${JSON.stringify(r)}`);
    const top = r.results[0];
    check(/rock climbing/i.test(top.memory), `search top is ${top.memory}, want a climbing turn`);
    check(r.results.some((m) => m.id === id), "search did not find the user's turn");
    check(top.score > 0.5 && top.score <= 1, `search score ${top.score}`);
    check(top.userId === "alice" && top.agentId === "coach" && top.runId === "run-1",
          `search entities ${JSON.stringify(top)}`);
    check(top.metadata.source === "compat", "search metadata");
    const none = await client.search("rock climbing", { filters: { user_id: "bob" } });
    check(none.results.every((m) => m.userId === "bob"), "search leaked another user");
    const f = await client.search("climbing", {
      filters: { AND: [{ user_id: "alice" }, { agent_id: { in: ["coach"] } }] },
      topK: 1,
    });
    check(f.results.length === 1, "search with AND/in and topK");
    await expectThrow(() => client.search("x", { filters: { agent_id: { ne: "coach" } } }),
                      ValidationError, "unscoped search");
  });

  await step("getAll", async () => {
    const all = await client.getAll({ filters: { user_id: "alice" } });
    check(all.count === 2 && all.results.length === 2, `getAll ${JSON.stringify(all)}`);
    check(all.next === null && all.previous === null, "getAll links");
    const p = await client.getAll({ filters: { user_id: "alice" }, page: 1, pageSize: 1 });
    check(p.results.length === 1 && typeof p.next === "string", "getAll page 1 of 1");
  });

  await step("get", async () => {
    const m = await client.get(id);
    check(m.id === id && m.memory.includes("rock climbing"), `get ${JSON.stringify(m)}`);
    check(m.userId === "alice" && m.sessionId === "run-1", "get entities");
    check(typeof m.createdAt === "string" && typeof m.updatedAt === "string", "get times");
  });

  await step("update", async () => {
    const u = await client.update(id, { text: "My favourite sport is bouldering." });
    check(u.memory === "My favourite sport is bouldering.", `update ${JSON.stringify(u)}`);
    const m = await client.get(id);
    check(m.memory === "My favourite sport is bouldering.", "get after update");
  });

  await step("history", async () => {
    const h = await client.history(id);
    check(Array.isArray(h) && h.length === 2, `history ${JSON.stringify(h)}`);
    check(h[0].event === "ADD" && h[0].newMemory.includes("rock climbing"), "history ADD");
    check(h[1].event === "UPDATE" && h[1].oldMemory.includes("rock climbing") &&
          h[1].newMemory === "My favourite sport is bouldering.", "history UPDATE");
  });

  await step("batch", async () => {
    const r = await client.add("temporary one", { userId: "carol", infer: false });
    const r2 = await client.add("temporary two", { userId: "carol", infer: false });
    const a = r.results[0].id, b = r2.results[0].id;
    await client.batchUpdate([{ memoryId: a, text: "temporary ONE" }]);
    check((await client.get(a)).memory === "temporary ONE", "batchUpdate");
    await client.batchDelete([a, b]);
    await expectThrow(() => client.get(b), MemoryNotFoundError, "get after batchDelete");
  });

  await step("delete", async () => {
    const d = await client.delete(id);
    check(typeof d.message === "string", "delete message");
    await expectThrow(() => client.get(id), MemoryNotFoundError, "get after delete");
    await expectThrow(() => client.get("not-a-memory-id"), MemoryNotFoundError, "get bad id");
  });

  await step("users", async () => {
    const u = await client.users();
    const names = u.results.map((e) => `${e.type}:${e.name}`);
    check(names.includes("user:alice") && names.includes("user:bob") &&
          names.includes("agent:coach") && names.includes("run:run-1"),
          `users ${JSON.stringify(names)}`);
    const alice = u.results.find((e) => e.type === "user" && e.name === "alice");
    check(alice.totalMemories === 1, `alice has ${alice.totalMemories}`);
  });

  await step("deleteAll", async () => {
    const d = await client.deleteAll({ userId: "alice" });
    check(typeof d.message === "string", "deleteAll message");
    const all = await client.getAll({ filters: { user_id: "alice" } });
    check(all.count === 0 && all.results.length === 0, "getAll after deleteAll");
  });

  await step("deleteUsers", async () => {
    await client.add("Dave plays chess.", { userId: "dave smith", infer: false });
    const r = await client.deleteUsers({ userId: "dave smith" });
    check(r.message === "Entity deleted successfully.", "deleteUsers message");
    const all = await client.getAll({ filters: { user_id: "dave smith" } });
    check(all.count === 0, "getAll after deleteUsers");
    await client.deleteUsers();
    const u = await client.users();
    check(u.results.length === 0, `users after deleteUsers(): ${JSON.stringify(u.results)}`);
  });

  check(complaints.length === 0, `the client complained: ${complaints.join(" | ")}`);
} catch (e) {
  failed = true;
  if (!process.exitCode) console.log(`compat_mem0: FAIL: ${e.stack || e}`);
}

server.kill("SIGTERM");
const { code, sig } = await exited;
if (code !== 0) {
  failed = true;
  console.log(`compat_mem0: FAIL: the server exited with ${code} ${sig || ""}: ${serverErr}`);
}
console.error = origError;
console.warn = origWarn;
if (failed) {
  console.log(`compat_mem0: passed steps: ${steps.join(", ")}`);
  process.exit(1);
}
rmSync(tmp, { recursive: true, force: true });
console.log(`compat_mem0: ok (${steps.join(", ")})`);
