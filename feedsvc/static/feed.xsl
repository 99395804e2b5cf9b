<?xml version="1.0" encoding="utf-8"?>
<!-- Shows an Atom or RSS feed as a readable page in a browser that is sent the feed itself and
     still applies XSLT (a saved file, a static host that cannot choose by Accept); feedsvc
     serve and deploy/nginx-static.conf give browsers the feed's HTML view instead. Feed readers
     ignore the xml-stylesheet instruction that points here. Text only: nothing from the feed is
     output as markup, and there is no script. -->
<xsl:stylesheet version="1.0"
  xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:atom="http://www.w3.org/2005/Atom"
  xmlns:dc="http://purl.org/dc/elements/1.1/"
  exclude-result-prefixes="atom dc">
  <xsl:output method="html" encoding="utf-8" indent="no" doctype-system="about:legacy-compat"/>

  <xsl:variable name="title" select="atom:feed/atom:title | rss/channel/title"/>
  <xsl:variable name="self" select="(atom:feed/atom:link[@rel='self'] | rss/channel/atom:link[@rel='self'])[1]/@href"/>
  <xsl:variable name="home" select="(atom:feed/atom:link[@rel='alternate'] | rss/channel/link)[1]"/>

  <xsl:template match="/">
    <html lang="{(atom:feed/@xml:lang | rss/channel/language)[1]}">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (feed)</title>
        <style>
          body { margin: 0 auto; max-width: 48rem; padding: 0 1rem 2rem; font: 1.05rem/1.55 system-ui, sans-serif; }
          .notice { background: #fff4ce; color: #3d3000; padding: .75rem 1rem; border-radius: .25rem; margin-top: 1rem; }
          .notice code { word-break: break-all; }
          .meta, .subtitle { color: #5f6368; font-size: .9rem; }
          article { padding: .75rem 0; border-bottom: 1px solid #d0d4d9; }
          h2 { font-size: 1.1rem; margin: 0 0 .25rem; }
        </style>
      </head>
      <body>
        <p class="notice">This is a web feed. To subscribe, copy its address into your feed reader:
          <code id="feed-address"><xsl:value-of select="$self"/></code></p>
        <h1 id="feed-title"><xsl:value-of select="$title"/></h1>
        <p class="subtitle"><xsl:value-of select="atom:feed/atom:subtitle | rss/channel/description"/></p>
        <p><a href="{$home/@href | $home[not(@href)]}">Open the web page of this feed</a></p>
        <main>
          <xsl:apply-templates select="atom:feed/atom:entry | rss/channel/item"/>
        </main>
        <xsl:for-each select="(atom:feed/atom:link | rss/channel/atom:link)[@rel='next']">
          <p><a rel="next" href="{@href}">Older articles</a></p>
        </xsl:for-each>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="atom:entry">
    <article>
      <h2><a href="{atom:link[not(@rel) or @rel='alternate'][1]/@href}"><xsl:value-of select="atom:title"/></a></h2>
      <p class="meta"><xsl:value-of select="atom:author/atom:name"/> · <xsl:value-of select="substring(atom:published, 1, 10)"/></p>
      <p><xsl:value-of select="atom:summary"/></p>
    </article>
  </xsl:template>

  <xsl:template match="item">
    <article>
      <h2><a href="{link}"><xsl:value-of select="title"/></a></h2>
      <p class="meta"><xsl:value-of select="dc:creator"/> · <xsl:value-of select="pubDate"/></p>
      <p><xsl:call-template name="unescape"><xsl:with-param name="text" select="description"/></xsl:call-template></p>
    </article>
  </xsl:template>

  <!-- feedsvc writes an RSS description as escaped plain text: undo the three escapes so the
       page shows the text as written (the result is still output as text, never as markup). -->
  <xsl:template name="unescape">
    <xsl:param name="text"/>
    <xsl:choose>
      <xsl:when test="contains($text, '&amp;')">
        <xsl:value-of select="substring-before($text, '&amp;')"/>
        <xsl:variable name="rest" select="substring-after($text, '&amp;')"/>
        <xsl:choose>
          <xsl:when test="starts-with($rest, 'lt;')">&lt;<xsl:call-template name="unescape"><xsl:with-param name="text" select="substring($rest, 4)"/></xsl:call-template></xsl:when>
          <xsl:when test="starts-with($rest, 'gt;')">&gt;<xsl:call-template name="unescape"><xsl:with-param name="text" select="substring($rest, 4)"/></xsl:call-template></xsl:when>
          <xsl:when test="starts-with($rest, 'amp;')">&amp;<xsl:call-template name="unescape"><xsl:with-param name="text" select="substring($rest, 5)"/></xsl:call-template></xsl:when>
          <xsl:otherwise>&amp;<xsl:call-template name="unescape"><xsl:with-param name="text" select="$rest"/></xsl:call-template></xsl:otherwise>
        </xsl:choose>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
