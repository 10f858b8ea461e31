"""256 x 256 uint8 test images for GPSToken: scikit-image photos and a flat image."""
import numpy as np
import skimage.data
import skimage.transform

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "camera")


def golden_images() -> dict[str, np.ndarray]:
  out = {}
  for name in PHOTOS:
    im = getattr(skimage.data, name)()
    im = np.stack([im] * 3, -1) if im.ndim == 2 else im[..., :3]
    out[name] = np.round(skimage.transform.resize(im, (256, 256), anti_aliasing=True) * 255
                         ).astype(np.uint8)
  out["flat"] = np.full((256, 256, 3), 128, np.uint8)
  return out
