// SPDX-License-Identifier: Apache-2.0
// Validates Kubernetes objects offline against the API's JSON schemas, as the
// npm package kubernetes-models bundles them (compiled validators generated
// from the Kubernetes OpenAPI spec), and catches unknown fields, which those
// schemas allow: every object is walked against the property lists of the
// package's TypeScript declarations, generated from the same spec.
//
//   node validate.js MODULES_DIR FILE.json
// FILE.json: [{"file": "app.yaml", "index": 0, "object": {...}}, ...]
// Prints one line per problem ("app.yaml#0 Deployment/x: /spec/foo: unknown
// field ...") and exits 1 if any, else prints "N objects valid" and exits 0.
'use strict';
const fs = require('fs');
const path = require('path');

const [modulesDir, input] = process.argv.slice(2);
if (!modulesDir || !input) {
  console.error('usage: node validate.js MODULES_DIR FILE.json');
  process.exit(2);
}
const req = (m) => require(path.join(modulesDir, m));

// ---- the declarations: interface name -> {prop: type string} ----------
// Each .d.ts declares a local name (IDeploymentSpec, in several API groups)
// and exports it under its global one (IIoK8sApiAppsV1DeploymentSpec), which
// is what property types refer to: the index is by global name.
const interfaces = new Map();
const fileGlobal = new Map(); // d.ts path -> {local: global}

function parseDts(text, file) {
  const lines = text.split('\n');
  const local = new Map();
  let current = null;
  let depth = 0;
  for (const line of lines) {
    const start = line.match(/^export interface (\w+)\b.*\{\s*$/);
    if (start && depth === 0) {
      current = {};
      local.set(start[1], current);
      depth = 1;
      continue;
    }
    const alias = line.match(/^export \{(.*)\};?\s*$/);
    if (alias && depth === 0) {
      const names = {};
      for (const part of alias[1].split(',')) {
        const m = part.trim().match(/^(\w+) as (\w+)$/);
        if (m && local.has(m[1])) {
          interfaces.set(m[2], local.get(m[1]));
          names[m[1]] = m[2];
        }
      }
      fileGlobal.set(file, names);
      continue;
    }
    if (!current) continue;
    if (depth === 1) {
      const prop = line.match(/^\s+"([^"]+)"\??: (.*)$/);
      if (prop) {
        let type = prop[2].trim();
        if (type.endsWith(';')) type = type.slice(0, -1);
        current[prop[1]] = type;
      }
    }
    for (const ch of line.replace(/"[^"]*"/g, '')) {
      if (ch === '{') depth++;
      else if (ch === '}') depth--;
    }
    if (depth === 0) current = null;
  }
}

function walkDir(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walkDir(p);
    else if (e.name.endsWith('.d.ts')) parseDts(fs.readFileSync(p, 'utf8'), p);
  }
}
walkDir(path.join(modulesDir, 'kubernetes-models'));
walkDir(path.join(modulesDir, '@kubernetes-models', 'apimachinery'));

function lookup(name) {
  return interfaces.get(name) || null;
}

// A property's type: an interface (checked), an array of one, or a leaf.
function walk(value, typeName, where, problems) {
  const props = lookup(typeName);
  if (!props || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) return;
  for (const [k, v] of Object.entries(value)) {
    if (!(k in props)) {
      problems.push(`${where}/${k}: unknown field (not in ${typeName}; known: ` +
        `${Object.keys(props).sort().join(', ')})`);
      continue;
    }
    const t = props[k];
    const arr = t.match(/^Array<(\w+)>$/);
    if (arr) {
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, arr[1], `${where}/${k}/${i}`, problems));
    } else if (/^\w+$/.test(t)) {
      walk(v, t, `${where}/${k}`, problems);
    }
  }
}

// ---- the objects --------------------------------------------------------
const docs = JSON.parse(fs.readFileSync(input, 'utf8'));
let bad = 0;
for (const { file, index, object } of docs) {
  const problems = [];
  const label = `${file}#${index} ${object && object.kind}/` +
    `${object && object.metadata && object.metadata.name}`;
  let Model = null;
  if (!object || typeof object.apiVersion !== 'string' || typeof object.kind !== 'string') {
    problems.push('no apiVersion or kind');
  } else {
    try {
      Model = req(`kubernetes-models/${object.apiVersion}/${object.kind}`)[object.kind];
    } catch (e) {
      problems.push(`no schema for apiVersion ${object.apiVersion}, kind ${object.kind}`);
    }
  }
  if (Model) {
    try {
      new Model(object).validate();
    } catch (e) {
      const errs = e.errors || [];
      if (errs.length === 0) problems.push(String(e.message || e));
      for (const x of errs) {
        problems.push(`${x.instancePath || '/'}: ${x.message}` +
          (x.params ? ` ${JSON.stringify(x.params)}` : ''));
      }
    }
    const dts = path.join(modulesDir, 'kubernetes-models', object.apiVersion,
      `${object.kind}.d.ts`);
    const top = (fileGlobal.get(dts) || {})[`I${object.kind}`];
    if (!top) problems.push(`no declarations for ${object.apiVersion} ${object.kind} in ${dts}`);
    else walk(object, top, '', problems);
  }
  for (const p of problems) console.log(`${label}: ${p}`);
  if (problems.length) bad++;
}
if (bad) {
  console.log(`${bad} of ${docs.length} objects invalid`);
  process.exit(1);
}
console.log(`${docs.length} objects valid`);
