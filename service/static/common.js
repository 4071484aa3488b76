// What the question page (/) and the document view (/documents/{id}) share: DOM helpers, the API call with the
// access key this tab keeps, Chinese error messages, collection paths and the URL's parameters. Loaded before
// each page's own script, which adds the error messages of its own (ZH_ERRORS) and everything else.
"use strict";
const KEY_STORAGE = "zhsearch.accessKey";
const DEFAULT_COLLECTION = "default";
const $ = (id) => document.getElementById(id);

// What the server says is English; the reader is told in Chinese first, the server's words after.
const ZH_ERRORS = {
  400: "請求格式有誤。",
  429: "請求太多，請稍候再試。",
  500: "伺服器發生錯誤，請稍後再試。",
  503: "服務暫時無法使用（索引或模型尚未就緒），請稍後再試。",
};

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child));
  return node;
}

function show(id, visible) { $(id).hidden = !visible; }

// The error line shows these texts and nodes; nothing (or "") hides it.
function showError(...parts) {
  const shown = parts.filter(Boolean);
  $("error").replaceChildren(...shown);
  show("error", shown.length > 0);
}

// PDF pages a passage lies on: 第 3 頁 p. 3, 第 3–4 頁 p. 3–4 ("" for other documents).
function pagesLabel(pages) {
  if (!pages || !pages.length) return "";
  const span = pages.length === 1 ? String(pages[0]) : pages[0] + "–" + pages[pages.length - 1];
  return "第 " + span + " 頁 p. " + span;
}

// A POST with a JSON body, or a GET when there is no body; the access key the question page keeps for this tab.
async function api(path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) headers.Authorization = "Bearer " + key;
  let res;
  try {
    res = await fetch(path, body === undefined ? { headers } : { method: "POST", headers, body: JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, "無法連線到伺服器，請檢查網路後再試。(Network error: " + err.message + ")");
  }
  let data = null;
  try { data = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) {
    const message = data && data.error && data.error.message;
    const zh = ZH_ERRORS[res.status] || (res.status >= 500 ? ZH_ERRORS[500] : "請求未被接受。");
    throw new ApiError(res.status, zh + " (" + (message || "Server error") + ", HTTP " + res.status + ")");
  }
  if (data === null) throw new ApiError(res.status, "伺服器回應無法解析 (invalid JSON)");
  return data;
}

// Every route but /v1/convert is per collection: /v1/… on the default one, /v1/collections/{name}/… otherwise.
function collectionPath(name, rest) {
  return (name === DEFAULT_COLLECTION ? "/v1" : "/v1/collections/" + encodeURIComponent(name)) + rest;
}

// The collection a link opens: ?c=name (absent for the default one).
function collectionFromUrl() {
  return new URLSearchParams(location.search).get("c") || DEFAULT_COLLECTION;
}

// The question a link carries: ?q=… ("" when there is none).
function questionFromUrl() {
  return (new URLSearchParams(location.search).get("q") || "").trim();
}
