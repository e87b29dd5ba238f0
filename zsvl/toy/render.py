"""Render toy scenes to small RGB images with numpy (signed distances, so edges are antialiased).

A shape is a signed distance function in the object's own frame (unit radius); a pattern is a
mask in [0, 1] that mixes the object colour with a contrasting ink; the background is a flat
colour plus Gaussian pixel noise; a scene's tone curve (gamma) applies before the noise.
:func:`render_image` is a pure function of ``(seed, index)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from zsvl.toy.world import Scene, image_size, sample_scene, scene_rng, vocabulary

__all__ = ["render_scene", "render_scenes", "render_image"]

Field = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _regular(n: int, start_deg: float = -90.0, radius: float = 1.0) -> np.ndarray:
    angles = np.deg2rad(start_deg + 360.0 * np.arange(n) / n)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.05, inner * 1.05)
    angles = np.deg2rad(-90.0 + 180.0 * np.arange(2 * points) / points)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _cross(arm: float = 0.34) -> np.ndarray:
    a, b = arm, 0.95
    return np.array(
        [
            [-a, -b],
            [a, -b],
            [a, -a],
            [b, -a],
            [b, a],
            [a, a],
            [a, b],
            [-a, b],
            [-a, a],
            [-b, a],
            [-b, -a],
            [-a, -a],
        ]
    )


_ARROW = np.array(
    [
        [-1.0, -0.22],
        [0.15, -0.22],
        [0.15, -0.62],
        [1.0, 0.0],
        [0.15, 0.62],
        [0.15, 0.22],
        [-1.0, 0.22],
    ]
)
_POLYGONS = {
    "square": _regular(4, 45.0, 1.0),
    "triangle": _regular(3, -90.0, 1.15) + np.array([0.0, 0.12]),
    "hexagon": _regular(6, 0.0, 1.0),
    "diamond": np.array([[0.0, -1.1], [0.68, 0.0], [0.0, 1.1], [-0.68, 0.0]]),
    "star": _star(),
    "cross": _cross(),
    "arrow": _ARROW,
}


def _sd_polygon(x: np.ndarray, y: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Exact signed distance to a polygon (negative inside), after Inigo Quilez's sdPolygon."""
    dist = (x - verts[0, 0]) ** 2 + (y - verts[0, 1]) ** 2
    sign = np.ones_like(x)
    for i in range(len(verts)):
        vi, vj = verts[i], verts[i - 1]
        ex, ey = vj[0] - vi[0], vj[1] - vi[1]
        wx, wy = x - vi[0], y - vi[1]
        t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        bx, by = wx - ex * t, wy - ey * t
        dist = np.minimum(dist, bx * bx + by * by)
        c1, c2, c3 = y >= vi[1], y < vj[1], ex * wy > ey * wx
        flip = (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
        sign = np.where(flip, -sign, sign)
    return sign * np.sqrt(dist)


def _shape_sdf(shape: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance (in object radii) of points (x, y) in the object frame."""
    r = np.hypot(x, y)
    if shape == "circle":
        return r - 0.92
    if shape == "ring":
        return np.abs(r - 0.7) - 0.28
    if shape == "crescent":
        return np.maximum(r - 0.95, -(np.hypot(x - 0.42, y + 0.12) - 0.78))
    return _sd_polygon(x, y, _POLYGONS[shape])


def _stripes(v: np.ndarray, sharp: float = 1.6) -> np.ndarray:
    """Soft square wave of period 1 in [0, 1]."""
    return np.clip(0.5 + sharp * np.sin(2 * np.pi * v), 0.0, 1.0)


def _lines(v: np.ndarray, width: float) -> np.ndarray:
    """1 near integer values of v (thin lines), 0 elsewhere; width in periods."""
    d = np.abs(v - np.round(v))
    return np.clip(1.5 - d / width, 0.0, 1.0)


def _pattern_mask(
    scene: Scene, u: np.ndarray, v: np.ndarray, px: float, window: tuple[int, slice, slice]
) -> np.ndarray:
    """Ink amount in [0, 1]; u, v are object-frame coordinates in pattern periods.

    window : (image size, rows, cols) of the u, v grid inside the image (for speckles).
    """
    kind = scene.pattern
    line = px / (scene.period * image_size()) * 0.5  # half a pixel, in periods
    if kind == "solid":
        return np.zeros_like(u)
    if kind == "striped":
        return _stripes(v)
    if kind == "wavy":
        return _stripes(v + 0.3 * np.sin(2 * np.pi * u / 2.0))
    if kind == "zigzag":
        return _stripes(v + 0.6 * np.abs((u / 1.5) % 1.0 - 0.5))
    if kind == "checkered":
        return np.clip(0.5 + 4.0 * np.sin(np.pi * u) * np.sin(np.pi * v), 0.0, 1.0)
    if kind == "dotted":
        d = np.hypot(u - np.round(u), v - np.round(v))
        return np.clip(0.5 + (0.27 - d) / (2 * line), 0.0, 1.0)
    if kind == "grid":
        return np.maximum(_lines(u, 2 * line), _lines(v, 2 * line))
    if kind == "crosshatched":
        a, b = (u + v) / np.sqrt(2), (u - v) / np.sqrt(2)
        return np.maximum(_lines(a, 2 * line), _lines(b, 2 * line))
    if kind == "speckled":
        size, rows, cols = window
        noise = np.random.default_rng(scene.noise_seed + 1).random((size, size))[rows, cols]
        return (noise < 0.22).astype(np.float64)
    if kind == "gradient":
        x = (u - scene.phase[0]) * scene.period / scene.radius  # back to object radii
        return np.clip((x + 1.0) / 2.0, 0.0, 1.0) * 0.9
    raise ValueError(f"Unknown pattern {kind!r}.")


def _object_colours(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """The object colour (jittered) and its pattern ink, both float RGB in 0-255."""
    base = np.asarray(vocabulary("colour")[scene.colour]["rgb"], dtype=np.float64)
    colour = np.clip(base * scene.brightness + np.asarray(scene.tint), 0.0, 255.0)
    luminance = colour @ np.array([0.299, 0.587, 0.114])
    ink = colour * 0.3 if luminance > 90 else colour * 0.35 + 255.0 * 0.6
    return colour, ink


def _window(scene: Scene, size: int) -> tuple[slice, slice]:
    """Rows and columns that can touch the object (everything else is background)."""
    reach = 1.2 * scene.radius * size + 1.5  # every shape lies within 1.15 radii of its centre
    rows = slice(max(0, int(scene.cy * size - reach)), min(size, int(scene.cy * size + reach) + 1))
    cols = slice(max(0, int(scene.cx * size - reach)), min(size, int(scene.cx * size + reach) + 1))
    return rows, cols


def render_scene(scene: Scene, size: int | None = None) -> np.ndarray:
    """The image of ``scene``: uint8 array of shape (size, size, 3)."""
    size = size or image_size()
    rows, cols = _window(scene, size)
    grid = (np.arange(size) + 0.5) / size
    gx, gy = np.meshgrid(grid[cols] - scene.cx, grid[rows] - scene.cy)
    theta = np.deg2rad(scene.angle)
    cos, sin = np.cos(theta), np.sin(theta)
    x = (cos * gx + sin * gy) / scene.radius  # object frame, in object radii
    y = (-sin * gx + cos * gy) / scene.radius
    px = 1.0 / (size * scene.radius)  # one pixel, in object radii
    coverage = np.clip(0.5 - _shape_sdf(scene.shape, x, y) / px, 0.0, 1.0)[..., None]

    scale = scene.radius / scene.period  # object radii -> pattern periods
    u, v = x * scale + scene.phase[0], y * scale + scene.phase[1]
    ink_amount = _pattern_mask(scene, u, v, px, (size, rows, cols))
    colour, ink = _object_colours(scene)
    obj = colour + (ink - colour) * ink_amount[..., None]

    bg = np.asarray(vocabulary("background")[scene.background]["rgb"], dtype=np.float64)
    img = np.empty((size, size, 3))
    img[...] = bg
    img[rows, cols] = bg + (obj - bg) * coverage
    if scene.gamma != 1.0:
        img = 255.0 * (img / 255.0) ** scene.gamma
    noise = np.random.default_rng(scene.noise_seed).normal(0.0, scene.noise, size=img.shape)
    return np.clip(np.rint(img + noise), 0, 255).astype(np.uint8)


def render_scenes(scenes: Sequence[Scene], size: int | None = None) -> np.ndarray:
    """Images of several scenes: uint8 array of shape (n, size, size, 3)."""
    size = size or image_size()
    out = np.empty((len(scenes), size, size, 3), dtype=np.uint8)
    for i, scene in enumerate(scenes):
        out[i] = render_scene(scene, size)
    return out


def render_image(
    seed: int, index: int, stream: int = 0, **fixed: str | Sequence[str]
) -> tuple[np.ndarray, Scene]:
    """Image ``index`` of stream ``stream`` of ``seed`` and its scene; a pure function of them.

    ``fixed`` constrains attributes as in :func:`zsvl.toy.world.sample_scene`.
    """
    scene = sample_scene(scene_rng(seed, index, stream), **fixed)
    return render_scene(scene), scene
