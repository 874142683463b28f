import { Etcd3 } from "etcd3";
const c = new Etcd3({ hosts: process.argv[2] ?? "127.0.0.1:2379" });
console.log(await c.get("x").string().catch((e) => String(e)));
c.close();
