/**
 * @module Builds weft: the AssemblyScript core (`build/weft_core.wasm`, also copied to
 * `dist/weft_core.wasm` as a standalone artifact) and the single executable `dist/weft`
 * (`bun build --compile`). The executable needs no node_modules: etcd3's gRPC definitions, which
 * it reads from .proto files at run time, are compiled to JSON here and inlined.
 *
 *   bun tools/build.ts [--no-wasm] [--no-exe]
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const root = join(import.meta.dir, "..");
const args = new Set(process.argv.slice(2));
mkdirSync(join(root, "build"), { recursive: true });
mkdirSync(join(root, "dist"), { recursive: true });

function run(cmd: string, argv: string[]): void {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`build: '${cmd} ${argv.join(" ")}' exited with ${r.status}`);
}

// 1. The Wasm core, when the AssemblyScript sources are there.
if (!args.has("--no-wasm") && existsSync(join(root, "asm", "asconfig.json"))) {
  run(join(root, "node_modules", ".bin", "asc"), ["--config", "asm/asconfig.json", "--target", "release"]);
  copyFileSync(join(root, "build", "weft_core.wasm"), join(root, "dist", "weft_core.wasm"));
}

// 2. The executable.
/** Tier-up thresholds multiplier baked into the executable (Bun's `compile.jitPolicy`). */
const JIT_POLICY = 100;
if (!args.has("--no-exe")) {
  const require = createRequire(join(root, "node_modules", "etcd3", "lib", "index.js"));
  const protobuf = require("protobufjs");
  const protoDir = join(dirname(require.resolve("etcd3/package.json")), "proto");
  // keepCase as etcd3 loads them: protobufjs would otherwise camel-case the field names.
  const protoJson = JSON.stringify(new protobuf.Root().loadSync(join(protoDir, "rpc.proto"), { keepCase: true }).toJSON());

  const inlineEtcdProtos: import("bun").BunPlugin = {
    name: "inline-etcd3-protos",
    setup(b) {
      b.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async ({ path }) => {
        const src = await Bun.file(path).text();
        const call = "(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`,";
        if (!src.includes(call)) throw new Error(`build: etcd3 changed; cannot inline protos in ${path}`);
        return { contents: src.replace(call, `(0, proto_loader_1.fromJSON)(${protoJson},`), loader: "js" };
      });
    },
  };

  // Source maps of earlier builds' chunks (their names change with the contents): dist/ keeps this build's.
  for (const f of readdirSync(join(root, "dist"))) if (f.endsWith(".js.map") || f === "weft.map") rmSync(join(root, "dist", f));
  const result = await Bun.build({
    // The udp backend's packet loop runs in a Worker: its module is a second entry point, found
    // inside the executable at /$bunfs/root/backend/udp/worker.ts (see workerUrl()).
    // The wireguard backend's worker likewise, at /$bunfs/root/backend/wireguard/worker.ts.
    entrypoints: [join(root, "src", "main.ts"), join(root, "src", "backend", "udp", "worker.ts"), join(root, "src", "backend", "wireguard", "worker.ts")],
    // Memory (issue #14; `bun bench/kube.ts --only rss --exe BUILD` measures each of these):
    // - jitPolicy: JavaScriptCore's tier-up thresholds ×100 on the main thread for the process's
    //   life. An idle agent runs its startup and timer code in the interpreter instead of
    //   compiling it, which keeps the JIT compilers' code pages and JIT'd code out of its RSS
    //   (−6 MiB kube mode, −10 MiB etcd mode). Hot code still tiers up, just later (a 1000-Node
    //   burst is routed as fast as before). Workers' VMs start with the normal policy (checked
    //   with bun:jsc's numberOfDFGCompiles in a compiled Worker), so the udp packet loop's
    //   warm-up JIT-compiles it as before.
    // - splitting: the modules a run never imports (etcd3 and gRPC in kube mode, the admin
    //   commands, the CNI plugin) become chunks that are not even parsed (−3.6 MiB kube mode).
    // - minify: less source to parse and to page in (−2.4 MiB kube mode); keepNames so functions
    //   and classes keep their `name` (stack traces show minified function names; the inline
    //   source map still gives the file and line). dashboardClient.toString() stays self-contained.
    // Measured and left out: bytecode (−2.7 MiB alone, nothing on top of these), --smol (nothing).
    compile: { outfile: join(root, "dist", "weft"), jitPolicy: JIT_POLICY },
    splitting: true,
    minify: true,
    keepNames: true,
    sourcemap: "inline",
    plugins: [inlineEtcdProtos],
    // The release build ignores the tests' WireGuard switches (a test build is the sources).
    define: { "process.env.WEFT_BUILD_TIME": JSON.stringify(new Date().toISOString()), "process.env.WEFT_TEST_WG_TIMERS": "undefined", "process.env.WEFT_TEST_WG_WORKER_CRASH_AFTER": "undefined" },
  } as Parameters<typeof Bun.build>[0]);
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error("build: bun build --compile failed");
  }
}
