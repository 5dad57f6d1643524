// fastmtcnn's page: send an image to POST /v1/detect, or webcam frames to the /v1/stream WebSocket, and draw
// the faces that come back. Plain browser JavaScript, no build step, nothing loaded from elsewhere.
//
// What was drawn last is kept on window.fastmtcnn (for the browser tests, and for anyone with a console):
//   drawn:  {source: "image" | "webcam", width, height, faces: [{box: [x1, y1, x2, y2], score, landmarks, id}]}
//           in the image's pixels (the canvas has the image's size, so these are the canvas coordinates too)
//   stream: {sent, answers: [{frame, type, faces: [{id, box, score}]}]}  (the last MAX_ANSWERS answers of the webcam)
"use strict";

const MAX_ANSWERS = 1000;
const COLORS = ["#00e676", "#ffea00", "#00b0ff", "#ff4081", "#ff9100", "#d500f9"];

const $ = (id) => document.getElementById(id);
const canvas = $("picture");
const context = canvas.getContext("2d");
const page = { drawn: null, stream: { sent: 0, answers: [] } };
window.fastmtcnn = page;

let pickedImage = null; // the Blob of the last picked or dropped image
let imageRequests = 0;  // numbers the /v1/detect requests: only the newest one's answer is shown
let webcam = null;      // {media, socket, frames: Map(frame number -> canvas sent), next, timer} while running

// ---------------------------------------------------------------------------------------------- settings
function settingsQuery() {
  const thresholds = ["t-pnet", "t-rnet", "t-onet"].map((id) => $(id).value).join(",");
  return new URLSearchParams({ min_face_size: $("min-face-size").value, thresholds }).toString();
}

function settingsValid() {
  return $("settings").reportValidity();
}

// ---------------------------------------------------------------------------------------------- output
function setStatus(text) {
  $("status").textContent = text;
}

function showAnswer(answer, roundTripMs) {
  $("json").textContent = JSON.stringify(answer, null, 2);
  const timing = answer.timing_ms || {};
  const server = timing.total !== undefined ? timing.total : timing.detect;
  $("round-trip").textContent = `${roundTripMs.toFixed(1)} ms`;
  $("server-time").textContent = server !== undefined ? `${Number(server).toFixed(1)} ms` : "–";
  $("face-count").textContent = answer.faces ? String(answer.faces.length) : "–";
}

function errorText(answer, status) {
  const error = (answer && answer.error) || {};
  return `Error${status ? " " + status : ""} ${error.code || ""}: ${error.message || "no message"}`;
}

function colorOf(face, index) {
  const key = face.id !== undefined ? face.id : index;
  return COLORS[Math.abs(key) % COLORS.length];
}

// Draw `picture` (anything drawImage takes, or null) scaled to width x height, then each face's box, score
// (and id) and five landmarks; record it on window.fastmtcnn.drawn and in the canvas's text alternative.
function draw(source, picture, width, height, faces) {
  canvas.width = width;
  canvas.height = height;
  context.fillStyle = "#444";
  context.fillRect(0, 0, width, height);
  if (picture) context.drawImage(picture, 0, 0, width, height);
  const line = Math.max(2, Math.round(Math.max(width, height) / 300));
  context.lineWidth = line;
  context.font = `${6 * line + 4}px sans-serif`;
  context.textBaseline = "bottom";
  const drawn = faces.map((face, index) => {
    const [x1, y1, x2, y2] = face.box;
    const color = colorOf(face, index);
    context.strokeStyle = context.fillStyle = color;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const label = (face.id !== undefined ? `#${face.id} ` : "") + face.score.toFixed(3);
    const textHeight = 6 * line + 4;
    const top = Math.max(y1 - textHeight - line, 0);
    context.fillRect(x1 - line / 2, top, context.measureText(label).width + 2 * line, textHeight + line);
    context.fillStyle = "#000";
    context.fillText(label, x1 + line / 2, top + textHeight + line / 2);
    context.fillStyle = color;
    for (const [x, y] of face.landmarks) {
      context.beginPath();
      context.arc(x, y, line * 1.5, 0, 2 * Math.PI);
      context.fill();
    }
    return { box: [x1, y1, x2, y2], score: face.score, landmarks: face.landmarks, id: face.id };
  });
  page.drawn = { source, width, height, faces: drawn };
  const found = `${faces.length} face${faces.length === 1 ? "" : "s"} found`;
  const where = drawn.map((f) => `at x ${Math.round(f.box[0])}, y ${Math.round(f.box[1])}`).join("; ");
  canvas.setAttribute("aria-label", `${source === "webcam" ? "Webcam frame" : "Image"}, ${width} by ${height}` +
    ` pixels: ${found}${where ? ", " + where : ""}`);
}

// ---------------------------------------------------------------------------------------------- one image
async function detectImage(blob) {
  stopWebcam();
  pickedImage = blob;
  $("detect").disabled = false;
  setStatus(`Detecting faces in ${blob.name || "the image"}…`);
  const request = ++imageRequests;
  const started = performance.now();
  let response, answer;
  try {
    response = await fetch(`/v1/detect?${settingsQuery()}`, {
      method: "POST", headers: { "Content-Type": blob.type || "application/octet-stream" }, body: blob });
    answer = await response.json();
  } catch (error) {
    if (request === imageRequests) setStatus(`The request failed: ${error.message}`);
    return;
  }
  if (request !== imageRequests) return; // a newer request (other settings or image) is on its way
  showAnswer(answer, performance.now() - started);
  if (!response.ok) {
    setStatus(errorText(answer, response.status));
    return;
  }
  let picture = null;
  try {
    picture = await createImageBitmap(blob); // null where the browser cannot show the format (TIFF...)
  } catch (error) {
    picture = null;
  }
  if (request !== imageRequests) return;
  draw("image", picture, answer.image.width, answer.image.height, answer.faces);
  const shown = picture ? "" : " (this browser cannot display the format: boxes only)";
  setStatus(`${answer.faces.length} face${answer.faces.length === 1 ? "" : "s"} found${shown}.`);
}

// ---------------------------------------------------------------------------------------------- webcam
async function startWebcam() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("This browser gives no camera access here (it needs https or localhost).");
    return;
  }
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (error) {
    setStatus(`No camera: ${error.message}`);
    return;
  }
  const video = $("video");
  video.srcObject = media;
  await video.play();
  webcam = { media, socket: null, frames: new Map(), next: 0, timer: null };
  page.stream = { sent: 0, answers: [] };
  $("webcam").textContent = "Stop webcam";
  $("webcam").setAttribute("aria-pressed", "true");
  openStream();
}

function openStream() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/v1/stream?${settingsQuery()}`);
  webcam.socket = socket;
  webcam.frames.clear();
  webcam.next = 0; // the server numbers a connection's frames from 0
  socket.onopen = () => {
    setStatus("Webcam stream open.");
    sendFrame();
  };
  socket.onmessage = (event) => onStreamAnswer(socket, JSON.parse(event.data));
  socket.onclose = (event) => {
    if (webcam && webcam.socket === socket) {
      stopWebcam();
      const why = event.reason || (event.code === 1006 ? "refused or connection lost" : "");
      setStatus(`The stream closed (code ${event.code}${why ? ": " + why : ""}).`);
    }
  };
}

// Send the current video frame as a JPEG; the next one goes when its answer has come (one frame in flight).
function sendFrame() {
  if (!webcam || !webcam.socket || webcam.socket.readyState !== WebSocket.OPEN) return;
  const video = $("video");
  const frame = document.createElement("canvas");
  frame.width = video.videoWidth;
  frame.height = video.videoHeight;
  frame.getContext("2d").drawImage(video, 0, 0);
  const socket = webcam.socket;
  frame.toBlob((blob) => {
    if (!webcam || webcam.socket !== socket || socket.readyState !== WebSocket.OPEN) return;
    webcam.frames.set(webcam.next, { canvas: frame, sentAt: performance.now() });
    webcam.next += 1;
    page.stream.sent += 1;
    socket.send(blob);
  }, "image/jpeg", 0.85);
}

function onStreamAnswer(socket, answer) {
  if (!webcam || webcam.socket !== socket) return;
  const sent = webcam.frames.get(answer.frame);
  webcam.frames.delete(answer.frame);
  const faces = answer.faces || [];
  page.stream.answers.push({ frame: answer.frame, type: answer.type,
                             faces: faces.map((face) => ({ id: face.id, box: face.box, score: face.score })) });
  if (page.stream.answers.length > MAX_ANSWERS) page.stream.answers.shift();
  showAnswer(answer, sent ? performance.now() - sent.sentAt : 0);
  if (answer.type === "faces" && sent) {
    draw("webcam", sent.canvas, sent.canvas.width, sent.canvas.height, faces);
    setStatus(`Frame ${answer.frame}: ${faces.length} face${faces.length === 1 ? "" : "s"}` +
              `${answer.full_pass ? " (full pass)" : ""}.`);
  } else if (answer.type === "dropped") {
    setStatus(`Frame ${answer.frame} dropped by the server: ${answer.reason}.`);
  } else if (answer.type === "error") {
    setStatus(`Frame ${answer.frame}: ${errorText(answer)}`);
  }
  const interval = 1000 / Math.min(30, Math.max(1, Number($("fps").value) || 10));
  const wait = sent ? Math.max(0, sent.sentAt + interval - performance.now()) : interval;
  webcam.timer = setTimeout(sendFrame, wait);
}

function stopWebcam() {
  if (!webcam) return;
  const { media, socket, timer } = webcam;
  webcam = null;
  clearTimeout(timer);
  if (socket) socket.close(1000, "webcam stopped");
  media.getTracks().forEach((track) => track.stop());
  $("video").srcObject = null;
  $("webcam").textContent = "Start webcam";
  $("webcam").setAttribute("aria-pressed", "false");
  setStatus("Webcam stopped.");
}

// ---------------------------------------------------------------------------------------------- events
function settingsChanged() {
  if (!settingsValid()) return;
  if (webcam) {
    webcam.socket.onclose = null;
    clearTimeout(webcam.timer);
    webcam.socket.close(1000, "new settings");
    openStream(); // the stream's settings are fixed per connection
  } else if (pickedImage) {
    detectImage(pickedImage);
  }
}

$("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file && settingsValid()) detectImage(file);
});

$("settings").addEventListener("submit", (event) => {
  event.preventDefault();
  settingsChanged();
});

for (const id of ["min-face-size", "t-pnet", "t-rnet", "t-onet"]) $(id).addEventListener("change", settingsChanged);

$("webcam").addEventListener("click", () => (webcam ? stopWebcam() : settingsValid() && startWebcam()));

const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file && settingsValid()) detectImage(file);
});

fetch("/healthz")
  .then((response) => response.json())
  .then((health) => {
    $("engine").textContent = `${health.engine.backend}, ${health.engine.precision}`;
    $("formats").textContent = health.formats.join(", ");
  })
  .catch((error) => { $("engine").textContent = `unknown (${error.message})`; });
