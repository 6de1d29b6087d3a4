"""Renderers of the synthetic world: ground camera, viewshed, orthophoto, camera poses.

Small hand-made worlds (flat ground plus boxes) whose images and regions can be predicted analytically.
"""
from __future__ import annotations

import numpy as np
import pytest
from pyproj import CRS

from engine.synth.camera import CameraPose, eye_elevation, sample_camera_poses
from engine.synth.ground import render_ground
from engine.synth.ortho import cast_shadows, render_orthophoto
from engine.synth.render_march import sample_distances
from engine.synth.render_sky import Lighting
from engine.synth.viewshed import visible_region
from engine.synth.world import Material, World

RES = 0.5
SIZE_M = 200.0
ORIGIN = (500000.0, 5000200.0)          # north-west corner; the world centre is (500100, 5000100)
CENTRE = (ORIGIN[0] + SIZE_M / 2, ORIGIN[1] - SIZE_M / 2)
WALL_RGB = (40, 60, 200)
ROOF_RGB = (200, 40, 40)


def make_world(boxes=(), size_m: float = SIZE_M, ground=Material.ROAD) -> World:
    """Flat ground at elevation 10 m plus boxes (east0, north0, east1, north1, height_m, material), given in
    metres relative to the world centre. Each box is its own object."""
    n = int(size_m / RES)
    terrain = np.full((n, n), 10.0, np.float32)
    height = terrain.copy()
    material = np.full((n, n), ground, np.uint8)
    albedo = np.full((n, n, 3), 120, np.uint8)
    wall = np.full((n, n, 3), 90, np.uint8)
    object_id = np.zeros((n, n), np.int32)
    world = World(seed=0, biome="urban", resolution_m=RES, terrain=terrain, height=height, material=material,
                  albedo=albedo, wall_colour=wall, object_id=object_id,
                  origin_xy=(ORIGIN[0] + (SIZE_M - size_m) / 2, ORIGIN[1] - (SIZE_M - size_m) / 2),
                  crs=CRS.from_epsg(32633))
    for index, (e0, n0, e1, n1, box_height, box_material) in enumerate(boxes, start=1):
        c0, r1 = world.map_to_cell(CENTRE[0] + e0, CENTRE[1] + n0)
        c1, r0 = world.map_to_cell(CENTRE[0] + e1, CENTRE[1] + n1)
        rows = slice(round(float(r0)), round(float(r1)))
        cols = slice(round(float(c0)), round(float(c1)))
        if box_material == Material.WATER:
            material[rows, cols] = Material.WATER
            continue
        height[rows, cols] = terrain[rows, cols] + box_height
        material[rows, cols] = box_material
        object_id[rows, cols] = index
        albedo[rows, cols] = ROOF_RGB
        wall[rows, cols] = WALL_RGB if box_material == Material.ROOF else (40, 90, 30)
    return world


def pose_at(east=0.0, north=0.0, heading=0.0, fov=60.0, eye=1.6, pitch=0.0, roll=0.0, width=192, height=128):
    return CameraPose(x=CENTRE[0] + east, y=CENTRE[1] + north, eye_height_m=eye, heading_deg=heading, fov_deg=fov,
                      pitch_deg=pitch, roll_deg=roll, width=width, height=height)


def hit_objects(world: World, render) -> np.ndarray:
    """(H, W) object id each pixel sees (0 ground, -1 sky or beyond the world)."""
    rows, cols = render.hit_cell[..., 0], render.hit_cell[..., 1]
    ids = np.where(rows >= 0, world.object_id[np.maximum(rows, 0), np.maximum(cols, 0)], -1)
    return ids


# ------------------------------------------------------------------------------------------------ ground
def test_heading_decides_what_is_seen():
    north_box = (-5, 30, 5, 40, 12, Material.ROOF)
    south_box = (-5, -40, 5, -30, 12, Material.ROOF)
    world = make_world([north_box, south_box])
    looking_north = hit_objects(world, render_ground(world, pose_at(heading=0)))
    assert (looking_north == 1).sum() > 500
    assert not (looking_north == 2).any()
    looking_south = hit_objects(world, render_ground(world, pose_at(heading=180)))
    assert (looking_south == 2).sum() > 500
    assert not (looking_south == 1).any()
    looking_east = hit_objects(world, render_ground(world, pose_at(heading=90)))
    assert not np.isin(looking_east, [1, 2]).any()


def test_building_ahead_fills_centre_columns_between_projected_rows():
    distance, box_height, eye = 30.0, 15.0, 1.6
    world = make_world([(-8, distance, 8, distance + 10, box_height, Material.ROOF),
                        (-8, -distance - 10, 8, -distance, box_height, Material.ROOF)])
    pose = pose_at(heading=0, fov=60, eye=eye, width=192, height=128)
    render = render_ground(world, pose)
    ids = hit_objects(world, render)
    focal = pose.focal_px
    top_row = pose.height / 2 - focal * (box_height - eye) / distance
    bottom_row = pose.height / 2 + focal * eye / distance
    centre = slice(pose.width // 2 - 10, pose.width // 2 + 10)
    rows = np.arange(pose.height) + 0.5
    inside = (rows > top_row + 1) & (rows < bottom_row - 1)
    assert (ids[inside][:, centre] == 1).all()
    assert (ids[rows < top_row - 1][:, centre] == -1).all()       # sky above the roof line
    assert (ids[rows > bottom_row + 1][:, centre] == 0).all()      # road below the wall's foot
    # The facade's depth is the analytic distance along each pixel's ray.
    facade_rows = np.flatnonzero(inside)
    drop = (facade_rows + 0.5 - pose.height / 2) / focal
    expected = distance * np.sqrt(1.0 + drop ** 2)
    assert np.allclose(render.depth_m[facade_rows, pose.width // 2], expected, rtol=0.02)
    # The building behind the camera is nowhere in the picture.
    assert not (ids == 2).any()


def test_facades_use_wall_colour_and_windows():
    world = make_world([(-8, 20, 8, 30, 15, Material.ROOF)])
    render = render_ground(world, pose_at(heading=0, fov=60, width=192, height=128),
                           lighting=Lighting(sun_azimuth_deg=180.0, sun_elevation_deg=40.0, cloud_cover=0.0))
    facade = hit_objects(world, render) == 1
    colours = render.image[facade].astype(float)
    assert colours[:, 2].mean() > colours[:, 0].mean() + 30        # wall colour (blue), not roof albedo (red)
    # Windows: darker panes make the facade's brightness vary strongly.
    brightness = colours.mean(axis=1)
    assert (brightness < np.percentile(brightness, 90) * 0.6).mean() > 0.05


def test_nearer_wall_hides_part_of_farther_building():
    wall = (-3, 15, 3, 16, 3.0, Material.ROOF)
    tower = (-10, 40, 10, 50, 25.0, Material.ROOF)
    pose = pose_at(heading=0, fov=60)
    alone = hit_objects(make_world([tower]), render_ground(make_world([tower]), pose))
    world = make_world([wall, tower])
    ids = hit_objects(world, render_ground(world, pose))
    centre = ids[:, pose.width // 2]
    wall_rows = np.flatnonzero(centre == 1)
    tower_rows = np.flatnonzero(centre == 2)
    assert wall_rows.size > 5 and tower_rows.size > 5
    # In the centre column the tower shows only above the nearer wall's top edge.
    assert tower_rows.max() < wall_rows.min()
    assert (alone == 1).sum() > (ids == 2).sum() + 0.1 * (alone == 1).sum()


def test_depth_grows_towards_horizon_on_flat_ground():
    world = make_world()
    pose = pose_at(heading=30, fov=70, eye=1.7, width=192, height=128)
    render = render_ground(world, pose)
    column = pose.width // 2
    below = np.arange(pose.height // 2 + 2, pose.height)
    depth = render.depth_m[below, column]
    assert np.all(np.isfinite(depth))
    assert np.all(np.diff(depth) < 0)                               # lower rows are nearer
    horizontal = 1.7 * pose.focal_px / (below + 0.5 - pose.height / 2)
    assert np.allclose(depth, np.hypot(horizontal, 1.7), rtol=0.02)
    assert render.sky_mask[: pose.height // 2 - 2].all()           # nothing but sky above the horizon


def test_pitch_and_roll_move_the_horizon():
    world = make_world()
    level = render_ground(world, pose_at(width=192, height=128)).sky_mask
    up = render_ground(world, pose_at(pitch=4.0, width=192, height=128)).sky_mask
    rolled = render_ground(world, pose_at(roll=4.0, width=192, height=128)).sky_mask
    assert up.sum() > level.sum() + 192 * 5                         # looking up shows more sky
    sky_rows = rolled.sum(axis=0)
    assert sky_rows[:10].mean() > sky_rows[-10:].mean() + 5         # clockwise roll lifts the right horizon


def add_tree(world: World, east: float, north: float, radius: float, crown_base: float, top: float,
             object_id: int) -> None:
    """A dome-shaped crown from crown_base to top (metres above the terrain), centred at (east, north)."""
    rows, cols = np.mgrid[0:world.shape[0], 0:world.shape[1]]
    x, y = world.cell_to_map(cols + 0.5, rows + 0.5)
    r2 = ((x - CENTRE[0] - east) ** 2 + (y - CENTRE[1] - north) ** 2) / radius ** 2
    crown = r2 < 1.0
    world.height[crown] = world.terrain[crown] + crown_base + (top - crown_base) * np.sqrt(1.0 - r2[crown])
    world.material[crown] = Material.TREE
    world.object_id[crown] = object_id
    world.wall_colour[crown] = (40, 90, 30)


def test_trees_show_trunk_and_let_low_rays_pass_under_the_crown():
    world = make_world()
    add_tree(world, east=0.0, north=15.0, radius=3.0, crown_base=4.0, top=10.0, object_id=7)
    pose = pose_at(heading=0, fov=60, eye=1.6, width=192, height=128)
    render = render_ground(world, pose)
    ids = hit_objects(world, render)
    focal, centre_row = pose.focal_px, pose.height / 2

    def row_at(z, d):
        return int(centre_row - focal * (z - 1.6) / d)
    centre = pose.width // 2
    beside = centre + int(focal * 2.0 / 15.0)                                # 2 m right of the trunk
    # Low rows: the centre column hits the trunk at ~15 m, the column beside it passes under the crown.
    trunk_rows = range(row_at(3.0, 15.0), row_at(0.8, 15.0))
    assert all(ids[r, centre] == 7 for r in trunk_rows)
    assert np.allclose(render.depth_m[list(trunk_rows), centre], 15.0, atol=0.5)
    assert all(ids[r, beside] != 7 for r in range(row_at(2.5, 13.0), row_at(0.5, 13.0)))
    assert (render.depth_m[row_at(2.5, 13.0):row_at(0.5, 13.0), beside] > 16.0).all()
    # Crown height: foliage in both columns, just in front of the trunk.
    for column in (centre, beside):
        for z in (5.5, 6.5):
            assert ids[row_at(z, 14.0), column] == 7


def test_render_is_deterministic_and_lighting_varies():
    world = make_world([(-8, 20, 8, 30, 15, Material.ROOF)])
    pose = pose_at()
    a = render_ground(world, pose, rng=np.random.default_rng(5)).image
    b = render_ground(world, pose, rng=np.random.default_rng(5)).image
    c = render_ground(world, pose, rng=np.random.default_rng(6)).image
    assert a.shape == (128, 192, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 2


def test_large_images_cover_the_same_parts_of_the_scene():
    world = make_world([(-8, 30, 8, 40, 15.0, Material.ROOF)])
    small = hit_objects(world, render_ground(world, pose_at(width=256, height=192)))
    large = hit_objects(world, render_ground(world, pose_at(width=2048, height=1536)))
    assert large.shape == (1536, 2048)
    assert (large == 1).mean() == pytest.approx((small == 1).mean(), abs=0.005)
    assert (large == -1).mean() == pytest.approx((small == -1).mean(), abs=0.005)


def test_camera_at_world_edge_looking_out_renders_ground_plane_and_sky():
    world = make_world(size_m=60.0)
    pose = pose_at(north=28.0, heading=0, width=192, height=128)
    render = render_ground(world, pose)
    beyond = render.hit_cell[..., 0] < 0
    ground_beyond = beyond & ~render.sky_mask
    assert ground_beyond.sum() > 500                                 # the edge terrain continues as a plane
    assert render.sky_mask[:50].all()
    assert np.isfinite(render.depth_m[ground_beyond]).all()


def test_sample_distances_grow_and_reach_range():
    dist = sample_distances(0.5, 800.0)
    assert dist[0] > 0 and np.all(np.diff(dist) > 0)
    assert dist[-1] >= 800.0 * 0.99
    assert np.diff(dist)[:10].max() <= 0.25 + 1e-6                 # fine steps near the camera


# ------------------------------------------------------------------------------------------------ viewshed
def test_overlap_on_flat_ground_matches_sector_area():
    world = make_world()
    for heading, fov, reach in [(0.0, 60.0, 80.0), (137.0, 100.0, 90.0), (300.0, 45.0, 95.0)]:
        view = visible_region(world, pose_at(heading=heading, fov=fov), max_range_m=reach)
        sector = np.deg2rad(fov) / 2.0 * reach ** 2
        assert view.polygon.is_valid
        assert abs(view.area_m2 - sector) / sector < 0.03
        # Centroid of a sector lies on its axis at 2 r sin(a) / (3 a) from the apex.
        half = np.deg2rad(fov) / 2.0
        along = 2.0 * reach * np.sin(half) / (3.0 * half)
        east, north = np.sin(np.deg2rad(heading)), np.cos(np.deg2rad(heading))
        expected = (CENTRE[0] + along * east, CENTRE[1] + along * north)
        assert np.hypot(view.centroid[0] - expected[0], view.centroid[1] - expected[1]) < 1.5


def test_wall_in_front_shrinks_overlap():
    pose = pose_at(heading=0, fov=60)
    open_view = visible_region(make_world(), pose, max_range_m=100.0)
    walled = make_world([(-6, 12, 6, 13, 4.0, Material.ROOF)])
    blocked_view = visible_region(walled, pose, max_range_m=100.0)
    assert blocked_view.area_m2 < 0.5 * open_view.area_m2
    # The ground between the camera and the wall stays visible, the ground right behind it does not.
    mask = blocked_view.world_mask(walled)
    col, row = walled.map_to_cell(pose.x, pose.y + 8.0)
    assert mask[int(row), int(col)]
    col, row = walled.map_to_cell(pose.x, pose.y + 30.0)
    assert not mask[int(row), int(col)]
    assert blocked_view.polygon.contains(open_view.polygon.centroid) is False


def test_overlap_sees_building_front_not_its_roof_or_back():
    world = make_world([(-10, 30, 10, 45, 12.0, Material.ROOF)])
    view = visible_region(world, pose_at(heading=0, fov=60), max_range_m=100.0)
    mask = view.world_mask(world)
    front = world.map_to_cell(CENTRE[0], CENTRE[1] + 29.9)
    roof = world.map_to_cell(CENTRE[0], CENTRE[1] + 38.0)
    behind = world.map_to_cell(CENTRE[0], CENTRE[1] + 60.0)
    assert mask[int(front[1]), int(front[0])]
    assert not mask[int(roof[1]), int(roof[0])]
    assert not mask[int(behind[1]), int(behind[0])]


def test_overlap_polygon_matches_its_mask_on_a_cluttered_world():
    world = cluttered_world()
    for seed in range(4):
        pose = sample_camera_poses(world, 1, np.random.default_rng(seed), border_margin_m=20.0)[0]
        view = visible_region(world, pose, max_range_m=60.0)
        assert view.polygon.is_valid and not view.polygon.is_empty
        assert view.area_m2 <= np.deg2rad(pose.fov_deg) / 2.0 * 60.0 ** 2 * 1.02
        cell_area = view.mask.sum() * RES ** 2
        assert abs(cell_area - view.area_m2) / cell_area < 0.05
        # The world-sized mask holds exactly the window's visible cells.
        assert view.world_mask(world).sum() == view.mask.sum()


# ------------------------------------------------------------------------------------------------ poses
def cluttered_world() -> World:
    rng = np.random.default_rng(3)
    boxes = []
    for _ in range(60):
        e, n = rng.uniform(-90, 85, 2)
        w, d = rng.uniform(2, 12, 2)
        kind = rng.choice([Material.ROOF, Material.TREE, Material.WATER])
        boxes.append((e, n, e + w, n + d, rng.uniform(3, 20), kind))
    return make_world(boxes, ground=Material.GRASS)


def test_camera_poses_keep_clear_of_obstacles():
    world = cluttered_world()
    poses = sample_camera_poses(world, 300, np.random.default_rng(0), clearance_m=1.5, border_margin_m=10.0)
    assert len(poses) == 300
    blocked = ~world.walkable
    rows_b, cols_b = np.nonzero(blocked)
    # Obstacle cells as squares in map coordinates.
    x0, y1 = world.cell_to_map(cols_b, rows_b)
    x1, y0 = world.cell_to_map(cols_b + 1, rows_b + 1)
    for pose in poses:
        gap_x = np.maximum(np.maximum(x0 - pose.x, pose.x - x1), 0.0)
        gap_y = np.maximum(np.maximum(y0 - pose.y, pose.y - y1), 0.0)
        assert np.hypot(gap_x, gap_y).min() >= 1.5
        col, row = world.map_to_cell(pose.x, pose.y)
        assert world.walkable[int(row), int(col)]
        assert 10.0 <= pose.x - world.origin_xy[0] <= SIZE_M - 10.0
        assert 10.0 <= world.origin_xy[1] - pose.y <= SIZE_M - 10.0
        assert 40.0 <= pose.fov_deg <= 110.0 and 1.4 <= pose.eye_height_m <= 2.5
        assert abs(pose.pitch_deg) <= 5.0 and abs(pose.roll_deg) <= 5.0
        assert 0.0 <= pose.heading_deg < 360.0
    headings = np.array([p.heading_deg for p in poses])
    assert np.histogram(headings, bins=4, range=(0, 360))[0].min() > 40      # any heading


def test_camera_poses_do_not_face_a_wall():
    # A 40 m world that is all building but for a 4 m wide lane running north-south through it.
    world = make_world([(-20, -20, -2, 20, 10.0, Material.ROOF), (2, -20, 20, 20, 10.0, Material.ROOF)],
                       size_m=40.0, ground=Material.GRASS)
    # Cameras at least 12 m from the lane's open ends: every sight line 45 deg off the lane meets a wall.
    poses = sample_camera_poses(world, 40, np.random.default_rng(4), clearance_m=0.5, min_open_view_m=8.0,
                                border_margin_m=12.0, max_abs_pitch_deg=0.0, max_abs_roll_deg=0.0,
                                width=96, height=64)
    for pose in poses:
        assert abs(pose.x - CENTRE[0]) < 2.0
        # Only along the lane (north or south) is there a view, so the FoV's middle stays near that axis.
        along_lane = pose.heading_deg % 180.0
        assert min(along_lane, 180.0 - along_lane) < 45.0
        horizon = render_ground(world, pose).depth_m[pose.height // 2 - 1]
        assert np.mean(horizon > 8.0) >= 0.3
    unfiltered = sample_camera_poses(world, 40, np.random.default_rng(4), clearance_m=0.5, min_open_view_m=0.0,
                                     border_margin_m=12.0)
    assert any(60 < p.heading_deg < 120 or 240 < p.heading_deg < 300 for p in unfiltered)


def test_camera_poses_avoid_steep_ground():
    world = make_world()
    # The western half of the world is a 45 degree slope, the eastern half flat.
    cols = np.arange(world.shape[1], dtype=np.float32)
    ramp = np.where(cols < world.shape[1] // 2, (world.shape[1] // 2 - cols) * RES, 0.0)
    world.terrain += ramp[None, :]
    world.height += ramp[None, :]
    poses = sample_camera_poses(world, 100, np.random.default_rng(2), max_ground_slope=0.4)
    assert all(p.x > CENTRE[0] for p in poses)
    steep_ok = sample_camera_poses(world, 100, np.random.default_rng(2), max_ground_slope=2.0)
    assert any(p.x < CENTRE[0] - 5 for p in steep_ok)


def test_camera_poses_are_deterministic():
    world = cluttered_world()
    a = sample_camera_poses(world, 20, np.random.default_rng(9), fov_range=(50, 60), width=64, height=48)
    b = sample_camera_poses(world, 20, np.random.default_rng(9), fov_range=(50, 60), width=64, height=48)
    assert a == b
    assert all(50 <= p.fov_deg <= 60 and (p.width, p.height) == (64, 48) for p in a)


def test_camera_poses_refuse_a_world_without_room():
    flooded = make_world([(-100, -100, 100, 100, 0.0, Material.WATER)])
    with pytest.raises(ValueError, match="walkable"):
        sample_camera_poses(flooded, 5, np.random.default_rng(0))
    crowded = make_world([(-100, -100, 100, 100, 0.0, Material.WATER), (-2, -2, 2, 2, 0.0, Material.WATER)])
    crowded.material[200, 200] = Material.GRASS                         # one dry cell, no clearance
    with pytest.raises(ValueError, match="clearance"):
        sample_camera_poses(crowded, 5, np.random.default_rng(0))


def test_eye_elevation_follows_terrain():
    world = make_world()
    assert eye_elevation(world, pose_at(eye=1.8)) == pytest.approx(11.8)


# ------------------------------------------------------------------------------------------------ ortho
def test_orthophoto_darker_on_shadow_side_of_tall_box():
    world = make_world([(-5, -5, 5, 5, 25.0, Material.ROOF)])
    image = render_orthophoto(world, sun_azimuth_deg=135.0, sun_elevation_deg=45.0)
    assert image.shape == (*world.shape, 3) and image.dtype == np.uint8

    def patch_mean(east, north):
        col, row = world.map_to_cell(CENTRE[0] + east, CENTRE[1] + north)
        r, c = int(row), int(col)
        return image[r - 4:r + 4, c - 4:c + 4].astype(float).mean()

    # The sun stands in the south-east, so the shadow falls to the north-west.
    shadow_side = patch_mean(-8.0, 8.0)
    sun_side = patch_mean(8.0, -8.0)
    assert shadow_side < 0.75 * sun_side
    # A shadow 25 m / tan(45 deg) long: still dark at 20 m, lit again at 35 m (diagonally from the box).
    assert patch_mean(-14.0, 14.0) < 0.75 * sun_side
    assert patch_mean(-30.0, 30.0) == pytest.approx(sun_side, rel=0.08)


@pytest.mark.parametrize("azimuth", [0.0, 60.0, 135.0, 200.0, 290.0])
def test_shadow_length_and_direction_match_the_sun(azimuth):
    world = make_world([(-1, -1, 1, 1, 10.0, Material.ROOF)])
    shadow = cast_shadows(world.height, RES, azimuth, 30.0)
    rows, cols = np.nonzero(shadow)
    x, y = world.cell_to_map(cols + 0.5, rows + 0.5)
    east, north = x - CENTRE[0], y - CENTRE[1]
    away = np.deg2rad(azimuth + 180.0)
    along = east * np.sin(away) + north * np.cos(away)
    assert along.min() > -1.0                                       # nothing shadowed on the sun side
    expected = 10.0 / np.tan(np.deg2rad(30.0))                      # 17.3 m
    assert expected - 2.0 < along.max() < expected + 2.0
