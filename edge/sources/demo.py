"""The built-in demo: a real face photo (matplotlib's grace_hopper) placed in a synthetic car cabin, animated
and lit like a drive, with a script that exercises the monitor: normal driving, a long eye closure, the driver
out of view, a dark near-infrared-like stretch, then a 1.5 s check of the left mirror (which must not alarm)
and a 5 s look down at the centre console (long enough for ``phone_use``). No camera, no download; timestamps
come from the script (frame k at k / fps), so a run gives the same events however fast the machine is.

The looks turn the default photo's face in 3-D as a textured mesh (:class:`MeshTurn`: FaceMesh's landmarks on the
photo, committed in ``demo_landmarks.json`` by ``tools/demo_face_landmarks.py``, with the head-pose template's
depth), so the nose and cheeks move against the eyes and the shipped head-pose model reads the looks. It is a
rendered approximation of a head turn, not a real one. Any other photo (``photo: PATH``) has no landmarks: its
looks turn the photo **as a plane** (a homography, :func:`plane_turn`), which a head-pose model reads as almost
frontal; enough to check the chain with a scripted pose, not from pixels.

The script is public (:data:`SCRIPT`, :func:`truth_at`, :func:`pose_at`) so tests and benchmarks know what the
monitor should see.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from edgefer.edge.samples import sample_image_path
from edgefer.edge.sources import Frame, Source, SourceConfig, SourceError


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    eyes: Literal["open", "closed"]
    face: Literal["visible", "hidden"]
    light: Literal["day", "night"]
    label: str
    look: Literal["road", "left_mirror", "centre_console"] = "road"


#: Where each look turns the head: (yaw, pitch) in degrees, AFLW2000 signs (yaw + the driver's right, pitch + up),
#: relative to the straight-ahead photo; the demo is a left-hand-drive car. The head turns in and out in TURN_S.
LOOKS = {"road": (0.0, 0.0), "left_mirror": (-45.0, -2.0), "centre_console": (32.0, -32.0)}
TURN_S = 0.3
#: The demo camera's focal length as a share of the frame width (about 60 degrees across).
FOCAL = 0.9


#: One pass of the demo; times in seconds.
SCRIPT = (
    Segment(0.0, 8.0, "open", "visible", "day", "driving"),
    Segment(8.0, 11.5, "closed", "visible", "day", "eyes closed 3.5 s (microsleep, then sleep)"),
    Segment(11.5, 15.0, "open", "visible", "day", "driving"),
    Segment(15.0, 20.0, "open", "hidden", "day", "driver out of view 5 s"),
    Segment(20.0, 30.0, "open", "visible", "night", "night, near-infrared-like light"),
    Segment(30.0, 34.0, "open", "visible", "day", "driving"),
    Segment(34.0, 35.5, "open", "visible", "day", "left mirror check 1.5 s (no alert)", "left_mirror"),
    Segment(35.5, 39.0, "open", "visible", "day", "driving"),
    Segment(39.0, 44.0, "open", "visible", "day", "looking down at the centre console 5 s (phone)", "centre_console"),
    Segment(44.0, 48.0, "open", "visible", "day", "driving"),
)
SCRIPT_LENGTH_S = SCRIPT[-1].end_s


def truth_at(t: float) -> Segment:
    t = t % SCRIPT_LENGTH_S
    return next(s for s in SCRIPT if s.start_s <= t < s.end_s)


def _roll(t: float) -> float:
    return 4.0 * math.sin(2 * math.pi * t / 7.0)  # gentle head roll, degrees counter-clockwise on screen


def pose_at(t: float) -> tuple[float, float, float] | None:
    """The head pose the demo renders at ``t``: (yaw, pitch, roll) in degrees, AFLW2000 signs (roll + is
    clockwise on screen); None while the face is hidden."""
    seg = truth_at(t)
    if seg.face != "visible":
        return None
    yaw, pitch = LOOKS[seg.look]
    local = t % SCRIPT_LENGTH_S
    ramp = min(1.0, max(0.0, min(local - seg.start_s, seg.end_s - local) / TURN_S))
    ramp = 0.5 - 0.5 * math.cos(math.pi * ramp)
    return yaw * ramp, pitch * ramp, -_roll(t)


def plane_turn(yaw: float, pitch: float, centre: tuple[float, float], focal: float) -> np.ndarray:
    """The homography that turns an image plane about ``centre`` by yaw (about the vertical axis) and pitch (about
    the horizontal one), AFLW2000 signs, seen by a pinhole camera of ``focal`` pixels at that distance."""
    a, b = math.radians(yaw), math.radians(pitch)
    rot_yaw = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rot_pitch = np.array([[1, 0, 0], [0, math.cos(b), math.sin(b)], [0, -math.sin(b), math.cos(b)]])
    r = rot_yaw @ rot_pitch
    k = np.array([[focal, 0, centre[0]], [0, focal, centre[1]], [0, 0, 1]])
    to_centre = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [0, 0, 1]])
    return k @ np.column_stack([r[:, 0], r[:, 1], [0, 0, focal]]) @ to_centre


#: FaceMesh's landmarks on the default photo (``tools/demo_face_landmarks.py`` made them, once).
LANDMARKS_FILE = Path(__file__).with_name("demo_landmarks.json")
#: The mesh's rings round the face (as multiples of the landmarks' hull about their centre) and how far each sits
#: behind the face's outline (in the face's RMS radius); chosen so the real estimator reads the demo's looks.
RING_SCALES = (1.25, 1.6)
RING_DEPTHS = (0.3, 0.8)
#: While the head turns, the photo's own backdrop (a flag) fades out beyond this multiple of the landmarks' hull,
#: over the first TURN_FADE_DEG of the turn: a head turns, its backdrop does not.
HEAD_MASK_SCALE = 1.3
TURN_FADE_DEG = 20.0


class MeshTurn:
    """Turns the head crop in 3-D as a textured mesh, for the default photo only (whose landmarks the demo knows).

    FaceMesh's 468 landmarks on the photo (:data:`LANDMARKS_FILE`) are each given the depth of the head-pose
    template (``models/headpose/facemesh_template.json``, scaled to the photo's face by a least-squares fit of its
    x, y to the landmarks); two rings of points round the face (hair, hat, the photo's backdrop) slope back behind
    the face's outline (:data:`RING_DEPTHS`), and the crop's corners and edge midpoints sit with the outer ring.
    The points turn about the face's centre, are projected by a pinhole camera, and the photo is warped triangle
    by triangle (a Delaunay triangulation made once; painter's order: triangles seen from behind first, then far
    to near), so the nose and cheeks move against the eyes and the far cheek hides as on a real head.

    Still a rendered approximation of a head turn, not one: the texture is the frontal photo's (the side of the
    head a real turn shows is the photo's cheek edge, stretched), and the depth is an average face's.
    """

    def __init__(self, points: np.ndarray, template: np.ndarray, shape: tuple[int, int]) -> None:
        hh, hw = shape
        centre = points.mean(axis=0)
        flat = template[:, :2] - template[:, :2].mean(axis=0)
        scale = float(((points - centre) * flat).sum() / (flat * flat).sum())  # template units -> photo pixels
        depth = scale * (template[:, 2] - template[:, 2].mean())  # z away from the camera, 0 at the face's centre
        outline = float(depth.max())
        self.hull = cv2.convexHull(points.astype(np.float32))[:, 0, :].astype(np.float64)
        rings = [centre + k * (self.hull - centre) for k in RING_SCALES]
        border = [(x, y) for x in (0, hw / 2, hw - 1) for y in (0, hh / 2, hh - 1) if (x, y) != (hw / 2, hh / 2)]
        extra = np.vstack([*rings, np.array(border, np.float64)])
        extra[:, 0] = extra[:, 0].clip(0, hw - 1)
        extra[:, 1] = extra[:, 1].clip(0, hh - 1)
        self.centre = centre
        self.source = np.vstack([points, extra])
        self.depth = np.concatenate([depth, np.full(len(rings[0]), outline + RING_DEPTHS[0] * scale),
                                     np.full(len(extra) - len(rings[0]), outline + RING_DEPTHS[1] * scale)])
        self.pivot = np.array([centre[0], centre[1], 0.0])
        subdiv = cv2.Subdiv2D((-1, -1, hw + 2, hh + 2))
        index = {}
        for i, (x, y) in enumerate(self.source):
            index.setdefault((round(float(x), 3), round(float(y), 3)), i)
            subdiv.insert((float(x), float(y)))
        triangles = []
        for tri in subdiv.getTriangleList():
            corners = [index.get((round(float(tri[j]), 3), round(float(tri[j + 1]), 3))) for j in (0, 2, 4)]
            if None not in corners:
                triangles.append(corners)
        self.triangles = np.array(triangles, np.int64)
        src = self.source[self.triangles]  # [T, 3, 2]
        self._src_area = np.sign(_signed_area(src))

    def warp(self, images: list[np.ndarray], yaw: float, pitch: float, affine: np.ndarray, focal: float,
             size: tuple[int, int]) -> list[np.ndarray]:
        """``images`` (float32 head crops) turned by yaw/pitch (AFLW2000 signs) about the pivot, seen by a pinhole
        camera of ``focal`` crop pixels at the pivot's distance, then placed in a ``size`` frame by ``affine``."""
        from edgefer.edge.headpose import rotation_matrix

        rel = np.column_stack([self.source - self.pivot[:2], self.depth - self.pivot[2]])
        turned = rel @ rotation_matrix(yaw, pitch, 0.0).T
        persp = focal / np.maximum(focal + turned[:, 2], 1e-3 * focal)
        flat = turned[:, :2] * persp[:, None] + self.pivot[:2]
        dst = flat @ affine[:, :2].T + affine[:, 2]
        width, height = size
        x0, y0 = np.floor(dst.min(axis=0)).astype(int).clip(0, [width - 1, height - 1])
        x1, y1 = np.ceil(dst.max(axis=0)).astype(int).clip(0, [width - 1, height - 1]) + 1
        tri_dst = dst[self.triangles] - (x0, y0)  # [T, 3, 2] in the box's pixels
        # back faces first, then front faces from far to near: the nearest surface ends up on top
        facing = np.sign(_signed_area(tri_dst)) == self._src_area
        order = np.lexsort((-turned[self.triangles, 2].mean(axis=1), facing))
        label = np.zeros((y1 - y0, x1 - x0), np.uint16)
        fixed = np.round(tri_dst * 16).astype(np.int32)
        for k in order:
            cv2.fillConvexPoly(label, fixed[k], int(k) + 1, cv2.LINE_8, 4)
        # per triangle, the affine map from box pixels back to crop pixels
        homog = np.concatenate([tri_dst, np.ones((len(tri_dst), 3, 1))], axis=2)  # [T, 3, 3]
        ok = np.abs(np.linalg.det(homog)) > 1e-6
        homog[~ok] = np.eye(3)
        back = np.swapaxes(np.linalg.solve(homog, self.source[self.triangles]), 1, 2)  # [T, 2, 3]
        back[~ok] = -1e4  # a triangle seen edge-on has no area to fill
        back = np.concatenate([np.full((1, 2, 3), 0.0), back])
        back[0, :, 2] = -1e4  # label 0: outside the head
        coeff = back.astype(np.float32).reshape(-1, 6)
        xx = np.arange(x1 - x0, dtype=np.float32)[None, :]
        yy = np.arange(y1 - y0, dtype=np.float32)[:, None]
        map_x = coeff[:, 0][label] * xx + coeff[:, 1][label] * yy + coeff[:, 2][label]
        map_y = coeff[:, 3][label] * xx + coeff[:, 4][label] * yy + coeff[:, 5][label]
        warped = cv2.remap(cv2.merge(images), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=0)
        out = []
        for channel in cv2.split(warped) if len(images) > 1 else [warped]:
            full = np.zeros((height, width), np.float32)
            full[y0:y1, x0:x1] = channel
            out.append(full)
        return out


def _signed_area(tri: np.ndarray) -> np.ndarray:
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def _mesh_for(photo_name: str, photo: Path, origin: tuple[int, int], shape: tuple[int, int]) -> MeshTurn | None:
    """The mesh for the default photo; None (the looks fall back to a plane turn) for any other photo, whose
    landmarks the demo does not know."""
    import json

    from edgefer.edge.headpose import load_template

    try:
        raw = json.loads(LANDMARKS_FILE.read_text())
    except (OSError, ValueError):
        return None
    if raw.get("photo") != photo_name or photo != sample_image_path(photo_name):
        return None
    image_size = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE).shape[::-1]
    if list(image_size) != raw.get("photo_size"):
        return None
    points = np.asarray(raw["points"], np.float64) - origin
    return MeshTurn(points, load_template(), shape)


class DemoConfig(SourceConfig):
    type: Literal["demo"] = "demo"
    photo: str = Field("grace_hopper", description="a sample photo name or an image path with one frontal face")
    width: int = Field(640, ge=160, le=1920, description="frame width")
    height: int = Field(360, ge=120, le=1080, description="frame height")
    fps: float = Field(15.0, gt=0, le=120, description="script frames per second")
    duration_s: float = Field(SCRIPT_LENGTH_S, gt=0, le=24 * 3600,
                              description=f"length of the run; the {SCRIPT_LENGTH_S:.0f} s script loops")
    realtime: bool = Field(False, description="sleep so frames come at the script's rate (for watching)")
    face_height: float = Field(0.45, ge=0.1, le=0.9, description="face box height as a share of the frame height")
    seed: int = Field(0, description="sensor noise seed")


def _head_images(photo: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int], tuple[int, int]]:
    """Grey head crops with eyes open and eyes closed (lids painted over the eyes found by OpenCV's eye
    cascade), the face box inside the crop and the crop's top-left corner in the photo."""
    image = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise SourceError(f"{photo}: not a readable image")
    face_cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))
    faces = face_cascade.detectMultiScale(image, 1.1, 5, minSize=(40, 40))
    if len(faces) == 0:
        raise SourceError(f"{photo}: no frontal face found for the demo")
    x, y, w, h = max(faces, key=lambda b: b[2] * b[3])
    pad = int(0.6 * w)
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(image.shape[1], x + w + pad), min(image.shape[0], y + h + pad)
    head = image[y0:y1, x0:x1].copy()
    face_box = (x - x0, y - y0, w, h)
    closed = head.copy()
    eyes = _eye_centres(head, face_box)
    iod = float(np.hypot(eyes[1][0] - eyes[0][0], eyes[1][1] - eyes[0][1]))
    mask = np.zeros_like(head)
    for cx, cy in eyes:
        cv2.ellipse(mask, (int(cx), int(cy)), (int(iod * 0.27), int(iod * 0.16)), 0, 0, 360, 255, -1)
    closed = cv2.inpaint(closed, mask, 5, cv2.INPAINT_TELEA)
    closed = cv2.GaussianBlur(closed, (0, 0), 1.2) * (mask > 0) + closed * (mask == 0)
    closed = closed.astype(np.uint8)
    for cx, cy in eyes:  # the lid line of a closed eye: a dark, slightly downward-curved stroke with lashes
        axes = (int(iod * 0.22), max(2, int(iod * 0.05)))
        cv2.ellipse(closed, (int(cx), int(cy + iod * 0.02)), axes, 0, 5, 175, 35, max(2, int(iod * 0.05)),
                    cv2.LINE_AA)
        for k in np.linspace(-0.7, 0.7, 6):  # lashes
            x = cx + k * axes[0]
            y = cy + iod * 0.02 + axes[1] * (1 - k * k) ** 0.5
            cv2.line(closed, (int(x), int(y)), (int(x + k * iod * 0.03), int(y + iod * 0.05)), 45, 1, cv2.LINE_AA)
    return head, closed, face_box, (x0, y0)


def _eye_centres(head: np.ndarray, face_box: tuple[int, int, int, int]) -> list[tuple[float, float]]:
    """The two eye centres: BlazeFace's keypoints when it finds the face, else the typical box geometry."""
    from edgefer.edge.crop import keypoints_from_box
    from edgefer.edge.detectors import Unavailable, create

    try:
        found = create({"type": "blazeface"}).detect(head)
    except Unavailable:
        found = []
    keypoints = found[0].keypoints if found and found[0].keypoints else keypoints_from_box(face_box)
    return [keypoints["right_eye"], keypoints["left_eye"]]


def _cabin(width: int, height: int) -> np.ndarray:
    """A dim car interior: dark headliner, a brighter side window, a headrest behind the driver."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cabin = 45 + 25 * (yy / height)
    window = (xx > width * 0.72) & (yy < height * 0.55)
    cabin[window] = 150 + 30 * np.sin(xx[window] / 37.0)
    cv2.ellipse(cabin, (int(width * 0.45), int(height * 0.55)), (int(width * 0.2), int(height * 0.5)), 0, 0, 360,
                30, -1)
    return np.clip(cabin, 0, 255).astype(np.float32)


class DemoSource(Source):
    type_key = "demo"
    config_class = DemoConfig

    def open(self) -> None:
        cfg: DemoConfig = self.config  # type: ignore[assignment]
        photo = sample_image_path(cfg.photo) if "/" not in cfg.photo and "." not in cfg.photo else Path(cfg.photo)
        self.open_head, self.closed_head, (fx, fy, fw, fh), origin = _head_images(photo)
        self.mesh = _mesh_for(cfg.photo, photo, origin, self.open_head.shape)
        self.scale = cfg.face_height * cfg.height / fh
        self.face_centre = (fx + fw / 2, fy + fh / 2)
        self.background = _cabin(cfg.width, cfg.height)
        hh, hw = self.open_head.shape
        soft = np.zeros((hh, hw), np.float32)
        cv2.ellipse(soft, (int(self.face_centre[0]), int(self.face_centre[1])), (int(fw * 0.75), int(fh * 1.05)),
                    0, 0, 360, 1.0, -1)
        self.alpha = cv2.GaussianBlur(soft, (0, 0), fw * 0.08)
        self.head_alpha = self.alpha
        if self.mesh is not None:
            soft = np.zeros((hh, hw), np.float32)
            ring = self.mesh.centre + HEAD_MASK_SCALE * (self.mesh.hull - self.mesh.centre)
            cv2.fillConvexPoly(soft, np.round(ring).astype(np.int32), 1.0)
            self.head_alpha = cv2.GaussianBlur(soft, (0, 0), fw * 0.06) * self.alpha
        rng = np.random.default_rng(cfg.seed)
        # sensor noise from a small pool: drawing a fresh field per frame would cost more than the monitor
        self.noise = [rng.normal(0, 1, (cfg.height, cfg.width)).astype(np.float32) for _ in range(8)]
        self.index = 0
        self.n_frames = int(round(cfg.duration_s * cfg.fps))
        self._start = time.monotonic()

    def _render(self, t: float) -> np.ndarray:
        cfg: DemoConfig = self.config  # type: ignore[assignment]
        seg = truth_at(t)
        frame = self.background.copy()
        if seg.face == "visible":
            head = self.closed_head if seg.eyes == "closed" else self.open_head
            angle = _roll(t)
            scale = self.scale * (1.0 + 0.04 * math.sin(2 * math.pi * t / 5.0))
            cx = cfg.width * (0.45 + 0.04 * math.sin(2 * math.pi * t / 9.0))
            cy = cfg.height * (0.5 + 0.02 * math.sin(2 * math.pi * t / 3.0))
            m = cv2.getRotationMatrix2D(self.face_centre, angle, scale)
            m[0, 2] += cx - self.face_centre[0]
            m[1, 2] += cy - self.face_centre[1]
            size = (cfg.width, cfg.height)
            pose = pose_at(t)
            if pose is not None and (pose[0] or pose[1]) and self.mesh is not None:  # a look: the head in 3-D
                focal = FOCAL * cfg.width / scale
                fade = min(1.0, max(abs(pose[0]), abs(pose[1])) / TURN_FADE_DEG)
                blend = (1 - fade) * self.alpha + fade * self.head_alpha
                face, alpha = self.mesh.warp([head.astype(np.float32), blend], pose[0], pose[1], m, focal, size)
            elif pose is not None and (pose[0] or pose[1]):  # another photo: turned in 3-D as a plane
                h = plane_turn(pose[0], pose[1], (cx, cy), FOCAL * cfg.width) @ np.vstack([m, [0, 0, 1]])
                face = cv2.warpPerspective(head.astype(np.float32), h, size, flags=cv2.INTER_LINEAR)
                alpha = cv2.warpPerspective(self.alpha, h, size, flags=cv2.INTER_LINEAR)
            else:
                face = cv2.warpAffine(head.astype(np.float32), m, size, flags=cv2.INTER_LINEAR)
                alpha = cv2.warpAffine(self.alpha, m, size, flags=cv2.INTER_LINEAR)
            frame = alpha * face + (1 - alpha) * frame
        if seg.light == "night":  # IR illuminator: flat, dim, noisy, glowing skin
            frame = 0.55 * frame + 20
            frame += 6 * self.noise[self.index % len(self.noise)]
        else:  # sunlight flicker through trees and pillars
            gain = 1.0 + 0.15 * math.sin(2 * math.pi * t / 4.0) + 0.05 * math.sin(2 * math.pi * t / 0.9)
            frame = frame * gain
            frame += 2 * self.noise[self.index % len(self.noise)]
        return np.clip(frame, 0, 255).astype(np.uint8)

    def read(self) -> Frame | None:
        cfg: DemoConfig = self.config  # type: ignore[assignment]
        if self.index >= self.n_frames:
            return None
        t = self.index / cfg.fps
        if cfg.realtime:
            delay = self._start + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        gray = self._render(t)
        frame = Frame(self.index, t, gray, name=truth_at(t).label)
        self.index += 1
        return frame

    def describe(self) -> str:
        cfg: DemoConfig = self.config  # type: ignore[assignment]
        return f"demo ({cfg.photo} in a cabin, {cfg.duration_s:.0f} s at {cfg.fps:g} fps)"
