"""What a page and a stylesheet name as requisites: every source the HTML standard and real news
sites use, and nothing a browser would not load to show the page."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser

from archiver.extract.css import declaration_references, decode_css, stylesheet_references
from archiver.extract.page import page_info
from archiver.extract.requisites import Reference, css_requisites, page_requisites, srcset_urls

PAGE = """<!doctype html><html><head>
<base href="https://news.example/2024/">
<link rel="stylesheet" href="/css/site.css">
<link rel="icon" href="/favicon.ico"><link rel="apple-touch-icon" href="/touch.png">
<link rel="preload" as="font" href="/f/body.woff2" crossorigin>
<link rel="preload" as="style" href="/css/late.css">
<link rel="preload" as="fetch" href="/api/data.json">
<link rel="modulepreload" href="/js/mod.js">
<link rel="alternate" href="/feed.xml"><link rel="canonical" href="/2024/a.html">
<meta property="og:image" content="/lead.jpg"><meta name="twitter:image" content="https://cdn.example/tw.jpg">
<script src="js/app.js"></script><script>var inline = "url(not-this.png)";</script>
<style>@import "print.css" print; .hero { background: url('hero.jpg') }</style>
</head><body>
<a href="/next.html">next</a><iframe src="/embed.html"></iframe>
<img src="body.jpg#frag" srcset="body-2x.jpg 2x, body,3x.jpg 3x">
<img src="data:image/gif;base64,R0lGOD" data-src="lazy.jpg" data-srcset="lazy-1.jpg 1x, lazy-2.jpg 2x">
<img data-original="orig.jpg"><img data-lazy-src="lazy-src.jpg" data-lazy-srcset="lazy-set.jpg 400w">
<picture><source srcset="pic.webp 1x, pic@2x.webp 2x" type="image/webp"><img src="pic.jpg"></picture>
<video poster="poster.jpg" src="clip.mp4"><source src="clip.webm"></video><audio src="sound.mp3"></audio>
<div style="background-image: url(&quot;div.png&quot;)">x</div>
<input type="image" src="button.png"><input type="text" src="not-an-image.png">
<img src="javascript:alert(1)"><img src="mailto:x@example.org"><img src="ftp://example.org/x.png">
<img src="body.jpg">
</body></html>"""


def refs(html: str, url: str = "https://news.example/2024/a.html", srcset_max: int = 8) -> list[Reference]:
    return page_requisites(LexborHTMLParser(html), url, srcset_max)


def test_a_page_names_every_requisite_once_in_document_order() -> None:
    found = refs(PAGE)
    base = "https://news.example"
    assert [(r.url.removeprefix(base), r.via, r.stylesheet) for r in found] == [
        ("/css/site.css", "link stylesheet", True),
        ("/favicon.ico", "link icon", False),
        ("/touch.png", "link icon", False),
        ("/f/body.woff2", "link preload", False),
        ("/css/late.css", "link preload", True),  # as=style: its own url()s are requisites too
        ("/js/mod.js", "link modulepreload", False),
        ("/lead.jpg", "meta image", False),
        ("https://cdn.example/tw.jpg", "meta image", False),
        ("/2024/js/app.js", "script src", False),  # relative to <base>, not to the page
        ("/2024/print.css", "style @import", True),
        ("/2024/hero.jpg", "style url()", False),
        ("/2024/body.jpg", "img src", False),  # the fragment dropped: once, though named twice
        ("/2024/body-2x.jpg", "img srcset", False),
        ("/2024/body,3x.jpg", "img srcset", False),  # a comma inside a candidate URL
        ("/2024/lazy.jpg", "img data-src", False),
        ("/2024/lazy-1.jpg", "img data-srcset", False),
        ("/2024/lazy-2.jpg", "img data-srcset", False),
        ("/2024/orig.jpg", "img data-original", False),
        ("/2024/lazy-src.jpg", "img data-lazy-src", False),
        ("/2024/lazy-set.jpg", "img data-lazy-srcset", False),
        ("/2024/pic.webp", "source srcset", False),
        ("/2024/pic@2x.webp", "source srcset", False),
        ("/2024/pic.jpg", "img src", False),
        ("/2024/clip.mp4", "video src", False),
        ("/2024/poster.jpg", "video poster", False),
        ("/2024/clip.webm", "source src", False),
        ("/2024/sound.mp3", "audio src", False),
        ("/2024/div.png", "style attribute url()", False),
        ("/2024/button.png", "input src", False),
    ]
    named = {r.url for r in found}
    # links, frames, feeds, fetch preloads, script text, non-image inputs and other schemes: not requisites
    for absent in ("next.html", "embed.html", "feed.xml", "data.json", "not-this.png", "not-an-image.png",
                   "alert", "mailto", "ftp:"):
        assert not any(absent in url for url in named), absent


def test_srcset_candidates_are_split_as_the_html_standard_does_and_bounded() -> None:
    assert srcset_urls("a.jpg, b.jpg 2x,c.jpg 3x") == ["a.jpg", "b.jpg", "c.jpg"]
    assert srcset_urls("  x,1.jpg 100w,  y.jpg 200w , ") == ["x,1.jpg", "y.jpg"]
    assert srcset_urls("a.jpg 1x (weird, descriptor), b.jpg") == ["a.jpg", "b.jpg"]
    assert srcset_urls("") == [] and srcset_urls(" , ,") == []
    wide = ", ".join(f"w{n}.jpg {n * 100}w" for n in range(1, 20))
    assert [r.url.rsplit("/", 1)[1] for r in refs(f'<img srcset="{wide}">', srcset_max=3)] == [
        "w1.jpg", "w2.jpg", "w3.jpg"]


def test_page_info_finds_requisites_only_when_asked() -> None:
    body = PAGE.encode()
    assert page_info(body, "text/html", "https://news.example/2024/a.html").requisites == ()
    asked = page_info(body, "text/html", "https://news.example/2024/a.html", srcset_max=8)
    assert len(asked.requisites) == len(refs(PAGE)) and asked.lead_image == "https://news.example/lead.jpg"


def test_a_stylesheet_names_its_imports_and_every_url_the_way_a_css_tokenizer_reads_it() -> None:
    css = """@charset "utf-8";
    @import url("base.css") screen; @import 'theme.css'; @import url(more.css) layer(x);
    /* url(in-a-comment.png) */
    @font-face { font-family: F; src: url(f.woff2) format("woff2"), url('f.woff') format("woff"); }
    .a { background: url( "spaced.png" ) no-repeat; content: "url(in-a-string.png)"; }
    .b { background-image: image-set("set-1x.png" 1x, url(set-2x.png) 2x); cursor: url(c\\2e png), auto }
    @media (min-width: 40em) { @supports (display: grid) {
        .c { mask: url(#svg-fragment) } .d { background: url(deep.png) } } }
    .e { background: url(data:image/png;base64,AAAA) } .f { background: url(spaced.png) }
    """
    found = css_requisites(css, "https://static.example/css/site.css")
    assert [(r.url, r.via, r.stylesheet) for r in found] == [
        ("https://static.example/css/base.css", "css @import", True),
        ("https://static.example/css/theme.css", "css @import", True),
        ("https://static.example/css/more.css", "css @import", True),
        ("https://static.example/css/f.woff2", "css url()", False),
        ("https://static.example/css/f.woff", "css url()", False),
        ("https://static.example/css/spaced.png", "css url()", False),
        ("https://static.example/css/set-1x.png", "css url()", False),
        ("https://static.example/css/set-2x.png", "css url()", False),
        ("https://static.example/css/c.png", "css url()", False),  # a CSS escape, decoded
        ("https://static.example/css/deep.png", "css url()", False),
    ]


def test_inline_styles_are_read_as_declarations() -> None:
    assert declaration_references("background: url(a.png), url('b.png'); color: red") == ["a.png", "b.png"]
    assert declaration_references("content: 'url(no.png)'") == []


def test_a_hostile_stylesheet_costs_bounded_work_and_raises_nothing() -> None:
    # nested far deeper than Python's recursion limit, and past the size the tokenizer is given
    assert [r.url for r in stylesheet_references("a{b:" + "(" * 200_000 + "url(x.png)")] == ["x.png"]
    assert [r.url for r in stylesheet_references("@media x{" * 50_000 + "a{b:url(y.png)}")] == ["y.png"]
    assert declaration_references("background:" + "[" * 200_000 + "url(z.png)") == ["z.png"]
    assert stylesheet_references("a{b:url(x.png)}" + " " * (3 * 1024 * 1024) + "c{d:url(late.png)}") == [
        stylesheet_references("a{b:url(x.png)}")[0]]
    assert stylesheet_references("@import") == [] and css_requisites("}}}{{{url(", "https://s.example/") == []
    # cut off at the end of the file: read as a browser reads it
    assert [r.url for r in css_requisites("a{b:url(x.png", "https://s.example/")] == ["https://s.example/x.png"]


def test_a_stylesheet_is_decoded_by_bom_then_http_charset_then_at_charset() -> None:
    text = "a{content:'é'}"
    assert decode_css(b"\xef\xbb\xbf" + text.encode("utf-8"), "text/css; charset=latin1") == text
    assert decode_css(text.encode("latin-1"), "text/css; charset=iso-8859-1") == text
    assert decode_css(b'@charset "gbk";a{content:"\xd6\xd0"}', "text/css") == '@charset "gbk";a{content:"中"}'
    # a byte codec is no charset: the text is read as UTF-8
    assert decode_css(b"a{b:url(x.png)}", "text/css; charset=bz2") == "a{b:url(x.png)}"
