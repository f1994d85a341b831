// Lazy loading as news sites do it: the real image is in data-src until the page has loaded.
document.querySelectorAll("img[data-src]").forEach(function (img) {
  img.src = img.getAttribute("data-src");
  img.removeAttribute("data-src");
});
