// Checks the hand-written Swift of ios/ without a Swift toolchain (scripts/check-swift runs it):
//
//   node check.js parse FILE...
//       parses each file with tree-sitter-swift; any ERROR or MISSING node is reported as
//       FILE:LINE:COLUMN and fails the run.
//   node check.js keystore GENERATED_SWIFT FILE...
//       reads the `Keystore` protocol from the generated sleutel_core.swift and checks that the
//       class `SecureEnclaveKeystore`, declared in FILE... (its body and its extensions), defines
//       every method the protocol declares with the same name, argument labels, types and
//       return type, as public, and declares the conformance.
//
// Exits 0 when every check passes, 1 when one fails, 2 on a usage or I/O error.
"use strict";

const fs = require("fs");
const Parser = require("tree-sitter");
const Swift = require("tree-sitter-swift");

/** The generated protocol the hand-written keystore implements, and its implementation. */
const PROTOCOL_NAME = "Keystore";
const IMPLEMENTATION_NAME = "SecureEnclaveKeystore";

/** Most syntax errors reported per file: past the first few, the rest are usually echoes. */
const MAX_ERRORS_PER_FILE = 20;

function parser() {
  const p = new Parser();
  p.setLanguage(Swift);
  return p;
}

function parseFile(p, file) {
  let source;
  try {
    source = fs.readFileSync(file, "utf8");
  } catch (e) {
    console.error(`${file}: cannot read: ${e.message}`);
    process.exit(2);
  }
  return p.parse(source);
}

function position(file, node) {
  return `${file}:${node.startPosition.row + 1}:${node.startPosition.column + 1}`;
}

/** Every ERROR and MISSING node, outermost first; an ERROR's insides are not reported again. */
function syntaxErrors(tree) {
  const found = [];
  const cursor = tree.walk();
  let descend = true;
  for (;;) {
    const node = cursor.currentNode;
    if (descend) {
      if (node.type === "ERROR") {
        found.push({ node, what: "syntax error" });
      } else if (node.isMissing) {
        found.push({ node, what: `missing ${JSON.stringify(node.type)}` });
      }
    }
    if (descend && node.type !== "ERROR" && cursor.gotoFirstChild()) {
      descend = true;
      continue;
    }
    if (cursor.gotoNextSibling()) {
      descend = true;
      continue;
    }
    if (!cursor.gotoParent()) break;
    descend = false;
  }
  return found;
}

function checkParse(files) {
  const p = parser();
  let failures = 0;
  for (const file of files) {
    const tree = parseFile(p, file);
    const errors = syntaxErrors(tree);
    for (const { node, what } of errors.slice(0, MAX_ERRORS_PER_FILE)) {
      const text = node.text.split("\n")[0].slice(0, 60);
      console.log(`${position(file, node)}: ${what}${text ? `: ${text}` : ""}`);
    }
    if (errors.length > MAX_ERRORS_PER_FILE) {
      console.log(`${file}: ... and ${errors.length - MAX_ERRORS_PER_FILE} more`);
    }
    failures += errors.length;
  }
  if (failures > 0) {
    console.log(`${failures} syntax error(s) in ${files.length} file(s)`);
    return 1;
  }
  console.log(`${files.length} file(s) parsed without errors`);
  return 0;
}

function squeeze(text) {
  return text.replace(/\s+/g, "");
}

function childrenOf(node) {
  const out = [];
  for (let i = 0; i < node.childCount; i++) out.push(node.child(i));
  return out;
}

/**
 * The signature of a function declaration (in a class, an extension or a protocol), as the
 * compiler matches a requirement: name, argument labels and types, effects, return type.
 */
function signature(fn) {
  const children = childrenOf(fn);
  const funcAt = children.findIndex((c) => c.type === "func");
  const name = children.slice(funcAt + 1).find((c) => c.type === "simple_identifier");
  const parameters = children
    .filter((c) => c.type === "parameter")
    .map((param) => {
      const parts = childrenOf(param);
      const external = param.childForFieldName("external_name");
      const label = external ? external.text : parts.find((c) => c.type === "simple_identifier").text;
      const colon = parts.findIndex((c) => c.type === ":");
      const type = parts.slice(colon + 1).find((c) => c.isNamed);
      return `${label}: ${type ? squeeze(type.text) : "?"}`;
    });
  const arrow = children.findIndex((c) => c.type === "->");
  const returns = arrow >= 0 ? squeeze(children[arrow + 1].text) : "Void";
  const effects = children.filter((c) => c.type === "async" || c.type === "throws").map((c) => c.text);
  const modifiers = children.find((c) => c.type === "modifiers");
  const visibility = modifiers
    ? childrenOf(modifiers)
        .filter((c) => c.type === "visibility_modifier")
        .map((c) => c.text)
    : [];
  return {
    name: name ? name.text : "?",
    key: `${name ? name.text : "?"}(${parameters.join(", ")}) -> ${returns}`,
    async: effects.some((e) => e.startsWith("async")),
    throws: effects.some((e) => e.startsWith("throws")),
    visibility,
    node: fn,
  };
}

function render(sig) {
  const effects = `${sig.async ? " async" : ""}${sig.throws ? " throws" : ""}`;
  return sig.key.replace(") ->", `)${effects} ->`);
}

function declarationName(decl) {
  const name = decl.childForFieldName("name");
  return name ? squeeze(name.text) : "";
}

function checkKeystore(generated, files) {
  const p = parser();
  const generatedTree = parseFile(p, generated);
  const protocol = generatedTree.rootNode
    .descendantsOfType("protocol_declaration")
    .find((d) => declarationName(d) === PROTOCOL_NAME);
  if (!protocol) {
    console.log(`${generated}: no protocol ${PROTOCOL_NAME} in the generated file`);
    return 1;
  }
  const required = protocol
    .descendantsOfType("protocol_function_declaration")
    .map(signature);
  if (required.length === 0) {
    console.log(`${position(generated, protocol)}: protocol ${PROTOCOL_NAME} declares no method`);
    return 1;
  }

  // The class and its extensions, wherever they are.
  const provided = [];
  let conforms = false;
  let declared = null;
  for (const file of files) {
    const tree = parseFile(p, file);
    for (const decl of tree.rootNode.descendantsOfType("class_declaration")) {
      if (declarationName(decl) !== IMPLEMENTATION_NAME) continue;
      if (!declared && decl.childForFieldName("declaration_kind").text === "class") {
        declared = { file, decl };
      }
      const inherits = childrenOf(decl)
        .filter((c) => c.type === "inheritance_specifier")
        .map((c) => squeeze(c.text));
      if (inherits.includes(PROTOCOL_NAME)) conforms = true;
      const body = decl.childForFieldName("body");
      if (!body) continue;
      for (const member of childrenOf(body)) {
        if (member.type === "function_declaration") provided.push({ file, sig: signature(member) });
      }
    }
  }
  if (!declared) {
    console.log(`no class ${IMPLEMENTATION_NAME} in: ${files.join(" ")}`);
    return 1;
  }

  let failures = 0;
  const where = position(declared.file, declared.decl);
  if (!conforms) {
    console.log(`${where}: ${IMPLEMENTATION_NAME} does not declare its conformance to ${PROTOCOL_NAME}`);
    failures++;
  }
  for (const requirement of required) {
    const match = provided.find((m) => m.sig.key === requirement.key);
    if (!match) {
      const sameName = provided.filter((m) => m.sig.name === requirement.name);
      const hint = sameName.length
        ? `; found ${sameName.map((m) => `${position(m.file, m.sig.node)} ${render(m.sig)}`).join(", ")}`
        : "";
      console.log(`${where}: ${IMPLEMENTATION_NAME} lacks ${render(requirement)}${hint}`);
      failures++;
      continue;
    }
    const at = position(match.file, match.sig.node);
    // A witness may throw only where the requirement does, and must not be async where the
    // requirement is not; a public class's witness of a public protocol must be public.
    if (match.sig.throws && !requirement.throws) {
      console.log(`${at}: ${match.sig.name} throws, the requirement does not`);
      failures++;
    }
    if (match.sig.async !== requirement.async) {
      console.log(`${at}: ${match.sig.name} differs from the requirement in async`);
      failures++;
    }
    if (!match.sig.visibility.some((v) => v === "public" || v === "open")) {
      console.log(`${at}: ${match.sig.name} must be public to implement ${PROTOCOL_NAME}`);
      failures++;
    }
  }
  if (failures > 0) {
    console.log(`${failures} problem(s) with ${IMPLEMENTATION_NAME} against ${generated}`);
    return 1;
  }
  console.log(
    `${IMPLEMENTATION_NAME} implements all ${required.length} methods of ${PROTOCOL_NAME} (${required
      .map((r) => r.name)
      .join(", ")})`,
  );
  return 0;
}

function main(argv) {
  const [command, ...rest] = argv;
  if (command === "parse" && rest.length > 0) return checkParse(rest);
  if (command === "keystore" && rest.length > 1) return checkKeystore(rest[0], rest.slice(1));
  console.error("usage: check.js parse FILE... | check.js keystore GENERATED_SWIFT FILE...");
  return 2;
}

process.exit(main(process.argv.slice(2)));
