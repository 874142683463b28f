/**
 * @module parseYamlSubset(): the kubeconfig YAML that kubectl, kubeadm and client-go write, checked
 * against the full `yaml` package (a devDependency, used here as the oracle only), and clear
 * refusals of what it does not support.
 */
import { describe, expect, test } from "bun:test";
import YAML from "yaml";
import { parseYamlSubset } from "../../src/kube/yaml_subset.ts";

// kubectl config view --raw / kubeadm's admin.conf (go-yaml v2 style: sequences at the key's indent).
const KUBEADM = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=
    server: https://192.168.77.254:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
`;

// Hand-written: indented sequences, comments, quotes, flow maps, block scalars, booleans.
const HAND = `# a comment
---
apiVersion: "v1"
kind: 'Config'
clusters:
  - name: "dev cluster"   # trailing comment
    cluster:
      server: 'https://[fd00::1]:6443'
      insecure-skip-tls-verify: true
  - name: other
    cluster: {server: "https://10.0.0.1", tls-server-name: api.example.com}
contexts:
  - {name: dev, context: {cluster: "dev cluster", user: dev}}
current-context: dev
users:
  - name: dev
    user:
      token: "abc#not-a-comment"
      tokenFile: ./token
      note: |
        line one
        line two
      folded: >-
        a
        b
empty:
nulls: ~
list: []
quote: 'it''s'
escapes: "tab\\there \\u00e9"
number: 6443
`;

const JSON_CONFIG = JSON.stringify({
  apiVersion: "v1", kind: "Config", "current-context": "c",
  clusters: [{ name: "k", cluster: { server: "https://k:6443" } }],
  contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
  users: [{ name: "u", user: { token: "t" } }],
}, null, 2);

describe("parseYamlSubset()", () => {
  for (const [name, text] of [["kubeadm admin.conf", KUBEADM], ["a hand-written kubeconfig", HAND], ["a JSON kubeconfig", JSON_CONFIG]] as const) {
    test(`reads ${name} as the yaml package does`, () => {
      expect(parseYamlSubset(text, "test")).toEqual(YAML.parse(text));
    });
  }

  test("reads nested sequences and sequences of scalars", () => {
    const t = "a:\n- - x\n  - y\n- z\nb:\n  - 1\n  - two\n";
    expect(parseYamlSubset(t, "t")).toEqual(YAML.parse(t));
  });

  const refused: [string, string, string][] = [
    ["an anchor", "a: &x 1\nb: *x\n", "line 1: YAML anchors, aliases and tags are not supported"],
    ["a second document", "a: 1\n---\nb: 2\n", "line 2: more than one YAML document"],
    ["a tab indentation", "a:\n\tb: 1\n", "line 2: a tab in the indentation"],
    ["a multi-line plain scalar", "a: one\n  two\n", "line 2: multi-line plain scalars are not supported"],
    ["a duplicate key", "a: 1\na: 2\n", "line 2: duplicate key \"a\""],
    ["an unterminated string", "a: \"abc\n", "line 1: unterminated double-quoted string"],
    ["a bad indentation", "a:\n    b: 1\n  c: 2\n", "line 3: unexpected"],
  ];
  for (const [what, text, msg] of refused) {
    test(`refuses ${what}, naming the file and the line`, () => {
      expect(() => parseYamlSubset(text, "kubeconfig /x")).toThrow(`kubeconfig /x: ${msg}`);
    });
  }
});
