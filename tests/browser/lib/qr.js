// Reads the QR code a page shows: a screenshot of the image as the browser drew it, decoded
// with jsQR (not read from the page's markup: what is tested is what a camera would see).

import jsQR from 'jsqr';
import { PNG } from 'pngjs';

/** White space kept around the image, so the decoder finds the code's edge. */
const MARGIN_PX = 24;

/** The text of the QR code `locator` shows (an <img>), read from its pixels. */
export async function readQr(page, locator) {
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
  if (!code) throw new Error('no QR code found in the image');
  return code.data;
}
