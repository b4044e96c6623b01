// Snapshot thumbnails: fetched with the bearer header (an <img src> cannot carry it) into blob URLs,
// only for rows on screen, a few at a time, and refreshed slowly: the snapshot decodes a keyframe on
// the server, so a page left open must not cost it much.

const REFRESH_MS = 30000;
const PARALLEL = 2;

export class Thumbnails {
  // fetchBlob(path) → Promise<Blob | null> (null when the camera has no picture now).
  constructor(fetchBlob) {
    this.fetchBlob = fetchBlob;
    this.cache = new Map(); // camera id → {url, at}
    this.visible = new Map(); // <img> → camera id
    this.queue = [];
    this.running = 0;
    this.observer = new IntersectionObserver((entries) => this.onIntersect(entries), { rootMargin: "100px" });
    this.timer = setInterval(() => this.refreshVisible(), REFRESH_MS);
  }

  // Attach an <img> of a camera row; it is filled when it scrolls into view.
  watch(img, camera) {
    img.dataset.camera = camera;
    const cached = this.cache.get(camera);
    if (cached) img.src = cached.url;
    this.observer.observe(img);
  }

  forget(img) {
    this.observer.unobserve(img);
    this.visible.delete(img);
  }

  onIntersect(entries) {
    for (const entry of entries) {
      const img = entry.target;
      if (entry.isIntersecting) {
        this.visible.set(img, img.dataset.camera);
        const cached = this.cache.get(img.dataset.camera);
        if (!cached || Date.now() - cached.at > REFRESH_MS) this.enqueue(img.dataset.camera);
      } else {
        this.visible.delete(img);
      }
    }
  }

  refreshVisible() {
    for (const camera of new Set(this.visible.values())) this.enqueue(camera);
  }

  // A camera that just came back online gets a fresh picture now rather than in 30 s.
  refresh(camera) {
    if ([...this.visible.values()].includes(camera)) this.enqueue(camera);
  }

  enqueue(camera) {
    if (!this.queue.includes(camera)) this.queue.push(camera);
    this.pump();
  }

  pump() {
    while (this.running < PARALLEL && this.queue.length) {
      const camera = this.queue.shift();
      this.running += 1;
      this.load(camera).finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }

  async load(camera) {
    let blob = null;
    try {
      blob = await this.fetchBlob(`/api/cameras/${encodeURIComponent(camera)}/snapshot.jpg?stream=main`);
    } catch {
      blob = null; // a failed thumbnail is not worth an error message; the state column says why
    }
    const old = this.cache.get(camera);
    if (blob === null) {
      // Keep the last picture but mark it stale, so an offline camera shows its last known view.
      if (old) old.at = Date.now();
      for (const [img, id] of this.visible) if (id === camera) img.classList.add("stale");
      return;
    }
    const url = URL.createObjectURL(blob);
    this.cache.set(camera, { url, at: Date.now() });
    for (const img of document.querySelectorAll("img.thumb")) {
      if (img.dataset.camera === camera) {
        img.src = url;
        img.classList.remove("stale");
      }
    }
    if (old) URL.revokeObjectURL(old.url);
  }
}
