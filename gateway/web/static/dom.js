/* Building DOM nodes without innerHTML (text is always text, never markup). */
"use strict";

window.DG = window.DG || {};

(function (DG) {
  const SVG_NS = "http://www.w3.org/2000/svg";

  function fill(node, attrs, children, isSvg) {
    Object.entries(attrs || {}).forEach(([name, value]) => {
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name === "class" && !isSvg) node.className = value;
      else if (name.startsWith("on") && typeof value === "function") {
        node.addEventListener(name.slice(2), value);
      } else node.setAttribute(name, value === true ? "" : String(value));
    });
    (children || []).forEach((child) => {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  DG.el = (tag, attrs, children) => fill(document.createElement(tag), attrs, children, false);
  DG.svg = (tag, attrs, children) =>
    fill(document.createElementNS(SVG_NS, tag), attrs, children, true);
  DG.clear = (node) => {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  };
})(window.DG);
