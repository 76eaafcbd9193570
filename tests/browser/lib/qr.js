// Reads the QR code a page shows: a screenshot of the image as the browser drew it, decoded
// with jsQR (not read from the page's markup: what is tested is what a camera would see).

import jsQR from 'jsqr';
import { PNG } from 'pngjs';

/** White space kept around the image, so the decoder finds the code's edge. */
const MARGIN_PX = 24;

/**
 * Frames tried before giving up. The page swaps its image every 2-second step, and a frame taken
 * while the new image loads shows no code; a camera simply reads the next frame, and so do we.
 */
const FRAMES = 5;

/** Time between two frames. */
const FRAME_INTERVAL_MS = 200;

/** The text of the QR code `locator` shows (an <img>), read from its pixels. */
export async function readQr(page, locator) {
  for (let frame = 1; ; frame += 1) {
    const text = await readFrame(page, locator);
    if (text !== null) return text;
    if (frame === FRAMES) throw new Error(`no QR code found in ${FRAMES} frames of the image`);
    await new Promise((resolve) => setTimeout(resolve, FRAME_INTERVAL_MS));
  }
}

/** The QR code's text in one screenshot of `locator`, or null when the frame shows none. */
async function readFrame(page, locator) {
  // Only a fully loaded image is worth a look; one still loading is waited for, a while.
  await locator.evaluate((img, waitMs) => (img.complete && img.naturalWidth > 0
    ? null
    : new Promise((resolve) => {
      img.addEventListener('load', resolve, { once: true });
      img.addEventListener('error', resolve, { once: true });
      setTimeout(resolve, waitMs);
    })), 2 * FRAME_INTERVAL_MS * FRAMES);
  const box = await locator.boundingBox();
  if (!box) throw new Error('the QR image is not visible');
  const png = PNG.sync.read(await page.screenshot({
    clip: {
      x: Math.max(0, box.x - MARGIN_PX),
      y: Math.max(0, box.y - MARGIN_PX),
      width: box.width + 2 * MARGIN_PX,
      height: box.height + 2 * MARGIN_PX,
    },
  }));
  const code = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  return code ? code.data : null;
}
