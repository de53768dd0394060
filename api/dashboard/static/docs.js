// A small renderer of /openapi.json: operations by tag, their parameters, bodies and
// replies, then every schema. Text only goes into the page through textContent.
(() => {
  "use strict";
  const root = document.getElementById("docs-body");

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    for (const child of children) {
      if (child == null) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function schemaName(schema) {
    if (!schema) return "";
    if (schema.$ref) return schema.$ref.split("/").pop();
    if (schema.allOf) return schema.allOf.map(schemaName).join(" & ");
    return schema.type ? [].concat(schema.type).join(" | ") : "any";
  }

  function schemaLink(schema) {
    const name = schemaName(schema);
    return schema && schema.$ref ? el("a", { href: `#schema-${name}` }, name) : el("code", {}, name);
  }

  function operation(path, method, op) {
    const box = el("details", { class: "card op", id: op.operationId || "" });
    box.append(el("summary", {},
      el("span", { class: `method ${method}` }, method.toUpperCase()), " ",
      el("code", {}, path), " ", op.summary || ""));
    if (op.description) box.append(el("p", {}, op.description));
    if (op.parameters && op.parameters.length) {
      const rows = op.parameters.map((p) => el("tr", {},
        el("td", {}, el("code", {}, p.name)), el("td", {}, p.in),
        el("td", {}, p.required ? "required" : ""),
        el("td", {}, el("code", {}, JSON.stringify(p.schema))), el("td", {}, p.description || "")));
      box.append(el("h4", {}, "Parameters"),
        el("div", { class: "scroll" }, el("table", {}, el("tbody", {}, ...rows))));
    }
    if (op.requestBody) {
      const [media, content] = Object.entries(op.requestBody.content)[0];
      box.append(el("h4", {}, "Body"), el("p", {}, `${media}: `, schemaLink(content.schema)));
    }
    const replies = Object.entries(op.responses).map(([status, reply]) => {
      const content = reply.content ? Object.entries(reply.content)[0] : null;
      return el("tr", {}, el("td", {}, el("strong", {}, status)),
        el("td", {}, content ? `${content[0]} ` : "", content ? schemaLink(content[1].schema) : ""),
        el("td", {}, reply.description || ""));
    });
    box.append(el("h4", {}, "Replies"),
      el("div", { class: "scroll" }, el("table", {}, el("tbody", {}, ...replies))));
    return box;
  }

  function render(doc) {
    root.replaceChildren();
    root.append(el("h1", {}, `${doc.info.title} ${doc.info.version}`),
      el("pre", {}, doc.info.description || ""));
    const byTag = new Map();
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const tag = (op.tags && op.tags[0]) || "other";
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push(operation(path, method, op));
      }
    }
    for (const [tag, ops] of byTag) root.append(el("h2", {}, tag), ...ops);
    root.append(el("h2", {}, "Schemas"));
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      root.append(el("details", { class: "card op", id: `schema-${name}` },
        el("summary", {}, el("code", {}, name), " ", schema.description || ""),
        el("pre", {}, JSON.stringify(schema, null, 2))));
    }
  }

  fetch("/openapi.json", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then(render)
    .catch((error) => root.replaceChildren(el("p", { class: "error" },
      `Could not load /openapi.json: ${error.message}`)));
})();
