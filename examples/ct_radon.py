"""Parallel-beam CT in NumPy for the denoising example: random ellipse phantoms, the Radon
transform (forward projection) and filtered back-projection (FBP), as two dense matrices
built once per geometry (bilinear ray sampling for projection, linear detector
interpolation for back-projection), so a whole batch projects with one matrix product.

Geometry: an n x n image whose content lies in the inscribed circle, `angles` views over
[0, 180) degrees, n detector bins of one pixel. Line integrals are in pixel units.
"""

import numpy as np


def ellipse_phantom(n, rng, n_ellipses=(4, 9)):
    """A Shepp-Logan-like random phantom (n, n) float32: a body ellipse (~1.0), a dense rim
    and 4-9 inner ellipses of +-0.05..0.4, all inside the inscribed circle."""
    y, x = np.mgrid[-1:1:n * 1j, -1:1:n * 1j]

    def ellipse(cx, cy, a, b, phi):
        c, s = np.cos(phi), np.sin(phi)
        u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
        return (u / a) ** 2 + (v / b) ** 2 <= 1

    a, b = rng.uniform(0.62, 0.8), rng.uniform(0.72, 0.88)
    phi = rng.uniform(-0.3, 0.3)
    body = ellipse(0, 0, a, b, phi)
    inner = ellipse(0, 0, a - 0.05, b - 0.05, phi)
    img = np.where(body, 1.0, 0.0) + np.where(body & ~inner, rng.uniform(0.3, 0.8), 0.0)
    for _ in range(rng.integers(n_ellipses[0], n_ellipses[1] + 1)):
        r = rng.uniform(0, 0.6)
        t = rng.uniform(0, 2 * np.pi)
        cx, cy = r * a * np.cos(t), r * b * np.sin(t)
        ea, eb = rng.uniform(0.03, 0.25), rng.uniform(0.03, 0.25)
        value = rng.choice([-1, 1], p=[0.4, 0.6]) * rng.uniform(0.05, 0.4)
        img += np.where(ellipse(cx, cy, ea, eb, rng.uniform(0, np.pi)) & inner, value, 0.0)
    return np.clip(img, 0, None).astype(np.float32)


class ParallelBeam:
    """Radon transform and FBP for n x n images and `angles` views (matrices built once)."""

    def __init__(self, n, angles=90):
        self.n, self.angles = n, angles
        self.theta = np.arange(angles) * np.pi / angles
        c = (n - 1) / 2
        t = np.arange(n) - c  # detector bin centres (also ray sample positions s)
        cos, sin = np.cos(self.theta), np.sin(self.theta)

        # forward: ray (angle a, bin i) samples points t_i (cos, sin) + s (-sin, cos)
        tt, ss = np.meshgrid(t, t, indexing="ij")  # (bins, samples)
        px = tt[None] * cos[:, None, None] - ss[None] * sin[:, None, None] + c  # column
        py = tt[None] * sin[:, None, None] + ss[None] * cos[:, None, None] + c  # row
        rows = np.broadcast_to(np.arange(angles * n).reshape(angles, n, 1), px.shape)
        self.P = self._bilinear_matrix(rows, py, px, angles * n, n)  # (A*n, n*n)

        # back-projection: pixel (row y, col x) reads bin t = x cos + y sin of each view
        yy, xx = np.meshgrid(t, t, indexing="ij")
        tp = xx.ravel()[:, None] * cos[None] + yy.ravel()[:, None] * sin[None] + c  # (n*n, A)
        i0 = np.floor(tp).astype(np.int64)
        w1 = tp - i0
        B = np.zeros((n * n, angles * n), np.float32)
        pix = np.broadcast_to(np.arange(n * n)[:, None], tp.shape)
        view = np.broadcast_to(np.arange(angles)[None] * n, tp.shape)
        for idx, w in ((i0, 1 - w1), (i0 + 1, w1)):
            ok = (idx >= 0) & (idx < n)
            np.add.at(B, (pix[ok], view[ok] + idx[ok]), w[ok])
        # pixels outside the inscribed circle are not seen by every view: set to 0
        inside = (xx ** 2 + yy ** 2 <= c ** 2).ravel()
        self.B = B * (np.pi / angles) * inside[:, None]  # (n*n, A*n)
        self.circle = inside.reshape(n, n)

        # ramp filter (Kak & Slaney's band-limited kernel, zero-padded, in Fourier space)
        size = max(64, int(2 ** np.ceil(np.log2(2 * n))))
        k = np.concatenate([np.arange(1, size // 2 + 1, 2), np.arange(size // 2 - 1, 0, -2)])
        f = np.zeros(size)
        f[0] = 0.25
        f[1::2] = -1 / (np.pi * k) ** 2
        self.ramp = np.real(np.fft.fft(f))  # (size,)
        self.pad = size

    @staticmethod
    def _bilinear_matrix(rows, py, px, n_rows, n):
        M = np.zeros((n_rows, n * n), np.float32)
        y0, x0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
        wy, wx = py - y0, px - x0
        for dy, dx, w in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx),
                          (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
            yi, xi = y0 + dy, x0 + dx
            ok = (yi >= 0) & (yi < n) & (xi >= 0) & (xi < n)
            np.add.at(M, (rows[ok], yi[ok] * n + xi[ok]), w[ok])
        return M

    def project(self, images):
        """(B, n, n) -> sinograms (B, A, n): line integrals in pixel units."""
        b = len(images)
        # (B, A*n) = (B, n*n) @ (n*n, A*n)
        return (images.reshape(b, -1).astype(np.float32) @ self.P.T).reshape(
            b, self.angles, self.n)

    def fbp(self, sinograms):
        """(B, A, n) -> (B, n, n) filtered back-projection."""
        b = len(sinograms)
        spec = np.fft.fft(sinograms, n=self.pad, axis=-1) * self.ramp
        filtered = np.real(np.fft.ifft(spec, axis=-1))[..., :self.n].astype(np.float32)
        # (B, n*n) = (B, A*n) @ (A*n, n*n)
        return (filtered.reshape(b, -1) @ self.B.T).reshape(b, self.n, self.n)


def low_dose(sinograms, photons, mu_per_pixel, rng):
    """Poisson counts ~ photons * exp(-mu * p) per ray, back to line integrals (pixel units)
    by -log(counts / photons) / mu (counts floored at 1)."""
    counts = rng.poisson(photons * np.exp(-mu_per_pixel * sinograms.astype(np.float64)))
    return (-np.log(np.maximum(counts, 1) / photons) / mu_per_pixel).astype(np.float32)


class SkimageBeam:
    """The same interface on scikit-image's radon / iradon (optional, slower)."""

    def __init__(self, n, angles=90):
        from skimage.transform import iradon, radon
        self.n, self.angles = n, angles
        self._radon, self._iradon = radon, iradon
        self.deg = np.arange(angles) * 180.0 / angles
        c = (n - 1) / 2
        yy, xx = np.mgrid[:n, :n] - c
        self.circle = xx ** 2 + yy ** 2 <= c ** 2

    def project(self, images):
        return np.stack([self._radon(im, self.deg, circle=True).T for im in images]).astype(
            np.float32)

    def fbp(self, sinograms):
        return np.stack([self._iradon(s.T, self.deg, circle=True, filter_name="ramp")
                         for s in sinograms]).astype(np.float32)
