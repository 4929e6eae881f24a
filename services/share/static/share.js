// The share page: asciinema-player on this share's websocket (ALiS v1), shown as it comes.
// The page sends nothing: the player only reads the stream.
"use strict";
const url = new URL("ws", window.location.href);
url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
window.roostPlayer = AsciinemaPlayer.create(
  { driver: "websocket", url: url.href, bufferTime: 0 },
  document.getElementById("player"),
  { autoPlay: true, fit: "width", controls: false },
);
