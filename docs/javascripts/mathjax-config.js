// MathJax 2.7, served from assets/mathjax/ (no network). pymdownx.arithmatex (generic mode)
// wraps $...$ as \(...\) and $$...$$ as \[...\] in elements of class "arithmatex".
window.MathJax = {
  tex2jax: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    ignoreClass: ".*",
    processClass: "arithmatex",
  },
  "HTML-CSS": {
    availableFonts: ["STIX-Web"],
    preferredFont: "STIX-Web",
    webFont: "STIX-Web",
    imageFont: null,
  },
  menuSettings: { zoom: "None" },
  messageStyle: "none",
  showMathMenu: false,
};
