"""Importers of label tool exports: each format's realistic file gives exactly the expected
digit boxes, bad boxes are named by line or id and the rest kept, non-digit labels are counted,
hostile XML is refused, and the VIA / Label Studio projects we write come back as written."""

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from annotations import detect_format, load_annotations, read_box_csv
from annotations.importers import import_labels
from annotations.importers.safe_xml import UnsafeXMLError
from annotations.label_projects import label_studio_tasks, via_project

EXPECTED = sorted([
    ("page1.png", 10, 20, 22, 40, 3),
    ("page1.png", 50, 20, 62, 40, 2),     # the number "27" split in two
    ("page1.png", 62, 20, 74, 40, 7),
    ("sub/page2.png", 5, 5, 15, 25, 0),
])
"""Every file below labels: 3 and 27 and an 'x' on page1.png, 0 on sub/page2.png, plus one
bad box."""


@pytest.fixture
def folder(tmp_path):
    Image.new("L", (200, 100), 255).save(tmp_path / "page1.png")
    (tmp_path / "sub").mkdir()
    Image.new("L", (120, 80), 255).save(tmp_path / "sub" / "page2.png")
    return tmp_path


def _boxes(imported, base):
    return sorted((Path(r.image).relative_to(base.resolve()).as_posix(), r.x0, r.y0, r.x1, r.y1,
                   r.digit) for r in imported.boxes.itertuples())


VIA_CSV = '''filename,file_size,file_attributes,region_count,region_id,region_shape_attributes,region_attributes
page1.png,1795,"{}",4,0,"{""name"":""rect"",""x"":10,""y"":20,""width"":12,""height"":20}","{""digit"":""3""}"
page1.png,1795,"{}",4,1,"{""name"":""rect"",""x"":50,""y"":20,""width"":24,""height"":20}","{""digit"":""27""}"
page1.png,1795,"{}",4,2,"{""name"":""rect"",""x"":80,""y"":20,""width"":10,""height"":20}","{""digit"":""x""}"
page1.png,1795,"{}",4,3,"{""name"":""rect"",""x"":90,""y"":""top"",""width"":10,""height"":20}","{""digit"":""5""}"
sub/page2.png,996,"{}",1,0,"{""name"":""rect"",""x"":5,""y"":5,""width"":10,""height"":20}","{""digit"":""0""}"
empty.png,100,"{}",0,0,"{}","{}"
'''


def test_via_csv(folder):
    (folder / "via.csv").write_text(VIA_CSV)
    assert detect_format(folder / "via.csv") == "via-csv"
    imported = import_labels(folder / "via.csv")
    assert _boxes(imported, folder) == EXPECTED
    assert [p.line for p in imported.problems] == [5]          # the row with y "top"
    assert imported.problems[0].reason.startswith("rect shape has coordinates that are not "
                                                  "numbers: {'name': 'rect', 'x': 90, 'y': 'top'")
    assert dict(imported.skipped) == {("label is not a digit", "x"): 1}
    assert imported.unboxed == [str((folder / "empty.png").resolve())]


def _via_json_records():
    def rect(x, y, w, h, digit):
        return {"shape_attributes": {"name": "rect", "x": x, "y": y, "width": w, "height": h},
                "region_attributes": {"digit": digit}}
    return {
        "page1.png1795": {"filename": "page1.png", "size": 1795, "file_attributes": {},
                          "regions": [rect(10, 20, 12, 20, "3"), rect(50, 20, 24, 20, "27"),
                                      rect(80, 20, 10, 20, "x"),
                                      {"shape_attributes": {"name": "rect", "x": 90, "y": 5},
                                       "region_attributes": {"digit": "4"}}]},
        "page2.png996": {"filename": "sub/page2.png", "size": 996, "file_attributes": {},
                         "regions": [{"shape_attributes": {
                             "name": "polygon", "all_points_x": [5, 15, 15, 5],
                             "all_points_y": [5, 5, 25, 25]},
                             "region_attributes": {"digit": {"0": True, "1": False}}}]},
    }


def test_via_json_export_and_project(folder):
    (folder / "via_export.json").write_text(json.dumps(_via_json_records()))
    project = via_project(folder, [], pd.DataFrame(columns=["file"]), "p")
    project["_via_img_metadata"] = _via_json_records()
    (folder / "via_project.json").write_text(json.dumps(project))
    for name in ("via_export.json", "via_project.json"):
        assert detect_format(folder / name) == "via-json"
        imported = import_labels(folder / name)
        assert _boxes(imported, folder) == EXPECTED
        assert [str(p) for p in imported.problems] == [
            f"{folder / name}: image 'page1.png' region 3: rect shape lacks 'width'"]
        assert dict(imported.skipped) == {("label is not a digit", "x"): 1}


COCO = {
    "info": {"description": "digits", "version": "1.0", "year": 2024, "contributor": "",
             "date_created": ""},
    "licenses": [{"name": "", "id": 0, "url": ""}],
    "categories": [{"id": k + 1, "name": str(k), "supercategory": ""} for k in range(10)]
    + [{"id": 11, "name": "27", "supercategory": ""}, {"id": 12, "name": "x", "supercategory": ""}],
    "images": [{"id": 1, "width": 200, "height": 100, "file_name": "page1.png", "license": 0,
                "flickr_url": "", "coco_url": "", "date_captured": 0},
               {"id": 2, "width": 120, "height": 80, "file_name": "sub/page2.png", "license": 0,
                "flickr_url": "", "coco_url": "", "date_captured": 0}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 4, "segmentation": [], "area": 240.0,
         "bbox": [10.0, 20.0, 12.0, 20.0], "iscrowd": 0, "attributes": {"occluded": False}},
        {"id": 2, "image_id": 1, "category_id": 11, "segmentation": [], "area": 480.0,
         "bbox": [50.0, 20.0, 24.0, 20.0], "iscrowd": 0, "attributes": {"occluded": False}},
        {"id": 3, "image_id": 1, "category_id": 12, "segmentation": [], "area": 200.0,
         "bbox": [80.0, 20.0, 10.0, 20.0], "iscrowd": 0, "attributes": {"occluded": False}},
        {"id": 17, "image_id": 9, "category_id": 2, "segmentation": [], "area": 200.0,
         "bbox": [1.0, 1.0, 10.0, 20.0], "iscrowd": 0, "attributes": {"occluded": False}},
        {"id": 4, "image_id": 2, "category_id": 1, "segmentation": [], "area": 200.0,
         "bbox": [5.0, 5.0, 9.6, 20.2], "iscrowd": 0, "attributes": {"occluded": False}},
    ],
}


def test_coco(folder):
    (folder / "instances_default.json").write_text(json.dumps(COCO))
    assert detect_format(folder / "instances_default.json") == "coco"
    imported = import_labels(folder / "instances_default.json")
    assert _boxes(imported, folder) == EXPECTED                 # 9.6 x 20.2 rounds to 10 x 20
    assert [p.reason for p in imported.problems] == [
        "annotation id 17: image_id 9 names no image of 'images'"]
    assert dict(imported.skipped) == {("label is not a digit", "x"): 1}


def _ls_result(rid, x, y, w, h, label, width=200, height=100, **extra):
    value = {"x": 100 * x / width, "y": 100 * y / height, "width": 100 * w / width,
             "height": 100 * h / height, "rotation": 0, "rectanglelabels": [label]}
    value.update(extra)
    return {"id": rid, "type": "rectanglelabels", "value": value, "origin": "manual",
            "to_name": "image", "from_name": "label", "image_rotation": 0,
            "original_width": width, "original_height": height}


LABEL_STUDIO = [
    {"id": 41, "data": {"image": "/data/upload/2/8f3a2b1c-page1.png"},
     "annotations": [{"id": 7, "completed_by": 1, "was_cancelled": False, "ground_truth": False,
                      "created_at": "2024-05-02T10:11:12.000Z", "lead_time": 12.5,
                      "result": [_ls_result("a1", 10, 20, 12, 20, "3"),
                                 _ls_result("a2", 50, 20, 24, 20, "number"),
                                 {"id": "a2", "type": "textarea", "from_name": "transcription",
                                  "to_name": "image", "origin": "manual",
                                  "value": {"x": 25, "y": 20, "width": 12, "height": 20,
                                            "rotation": 0, "text": ["27"]}},
                                 _ls_result("a3", 80, 20, 10, 20, "x"),
                                 _ls_result("bad", 90, 20, 10, 20, "5", rotation=30)]}],
     "predictions": [], "file_upload": "8f3a2b1c-page1.png"},
    {"id": 42, "data": {"image": "/data/local-files/?d=corpus/sub/page2.png"},
     "annotations": [{"id": 8, "was_cancelled": True, "result": []},
                     {"id": 9, "was_cancelled": False,
                      "result": [_ls_result("b1", 5, 5, 10, 20, "0", 120, 80)]}]},
]


def test_label_studio(folder):
    (folder / "project-3-at-2024.json").write_text(json.dumps(LABEL_STUDIO))
    assert detect_format(folder / "project-3-at-2024.json") == "label-studio"
    imported = import_labels(folder / "project-3-at-2024.json")
    assert _boxes(imported, folder) == EXPECTED
    assert [p.reason for p in imported.problems] == [
        "task id 41 annotation id 7 result id bad: box is rotated by 30 degrees: draw upright "
        "boxes"]
    assert dict(imported.skipped) == {("label is not a digit", "x"): 1}


CVAT = '''<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>12</id>
      <name>sphaera digits</name>
      <size>2</size>
      <mode>annotation</mode>
      <labels>
        <label><name>3</name><color>#fa3253</color><type>rectangle</type><attributes/></label>
        <label><name>number</name><color>#33ddff</color><type>rectangle</type>
          <attributes><attribute><name>value</name><mutable>False</mutable>
            <input_type>text</input_type><default_value></default_value><values></values>
          </attribute></attributes></label>
      </labels>
    </task>
    <dumped>2024-05-02 10:20:30.123456+00:00</dumped>
  </meta>
  <image id="0" name="page1.png" width="200" height="100">
    <box label="3" source="manual" occluded="0" xtl="10.00" ytl="20.00" xbr="22.00" ybr="40.00" z_order="0">
    </box>
    <box label="number" source="manual" occluded="0" xtl="50.00" ytl="20.00" xbr="74.00" ybr="40.00" z_order="0">
      <attribute name="value">27</attribute>
    </box>
    <box label="x" source="manual" occluded="0" xtl="80.00" ytl="20.00" xbr="90.00" ybr="40.00" z_order="0">
    </box>
    <box label="4" source="manual" occluded="0" xtl="90.00" ytl="20.00" xbr="99.00" z_order="0">
    </box>
    <polygon label="3" source="manual" occluded="0" points="1.0,1.0;5.0,1.0;5.0,9.0" z_order="0">
    </polygon>
  </image>
  <image id="1" name="sub/page2.png" width="120" height="80">
    <box label="0" source="manual" occluded="0" xtl="5.00" ytl="5.00" xbr="15.00" ybr="25.00" z_order="0">
    </box>
  </image>
</annotations>
'''


def test_cvat(folder):
    (folder / "annotations.xml").write_text(CVAT)
    assert detect_format(folder / "annotations.xml") == "cvat"
    imported = import_labels(folder / "annotations.xml")
    assert _boxes(imported, folder) == EXPECTED
    assert [p.reason for p in imported.problems] == [
        "image id 0 ('page1.png') box 3: box lacks one of xtl, ytl, xbr, ybr"]
    assert dict(imported.skipped) == {("label is not a digit", "x"): 1,
                                      ("shape is not a box", "polygon"): 1}


def _glyph(gid, x0, y0, x1, y1, text):
    return (f'<Glyph id="{gid}"><Coords points="{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1}"/>'
            f'<TextEquiv conf="0.91"><Unicode>{text}</Unicode></TextEquiv></Glyph>')


def _page_xml(image, glyphs):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15">'
            '<Metadata><Creator>Transkribus</Creator><Created>2024-05-02T10:00:00</Created>'
            '<LastChange>2024-05-02T10:00:00</LastChange></Metadata>'
            f'<Page imageFilename="{image}" imageWidth="200" imageHeight="100">'
            '<TextRegion id="r1"><Coords points="0,0 199,0 199,99 0,99"/>'
            '<TextLine id="l1"><Coords points="0,0 199,0 199,99 0,99"/>'
            '<Word id="w1"><Coords points="0,0 199,0 199,99 0,99"/>'
            + "".join(glyphs) +
            '<TextEquiv><Unicode>3 27</Unicode></TextEquiv></Word></TextLine></TextRegion>'
            '</Page></PcGts>\n')


def test_page_xml(folder):
    (folder / "page1.xml").write_text(_page_xml("page1.png", [
        _glyph("g1", 10, 20, 22, 40, "3"), _glyph("g2", 50, 20, 62, 40, "2"),
        _glyph("g3", 62, 20, 74, 40, "7"), _glyph("g4", 80, 20, 90, 40, "x"),
        '<Glyph id="g5"><Coords points="a,b c,d"/><TextEquiv><Unicode>1</Unicode>'
        '</TextEquiv></Glyph>']))
    (folder / "sub" / "page2.xml").write_text(_page_xml("page2.png", [
        _glyph("g1", 5, 5, 15, 25, "0")]))
    assert detect_format(folder / "page1.xml") == "page-xml"
    first, second = import_labels(folder / "page1.xml"), import_labels(folder / "sub/page2.xml")
    both = pd.concat([first.boxes, second.boxes])
    assert _boxes(type(first)("", both), folder) == EXPECTED
    assert [p.reason for p in first.problems] == [
        "Glyph id 'g5': Coords points 'a,b c,d' are not 'x,y x,y ...' numbers"]
    assert dict(first.skipped) == {("label is not a digit", "x"): 1}


BILLION_LAUGHS = '''<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<annotations><version>&lol3;</version></annotations>
'''
EXTERNAL = '''<?xml version="1.0"?>
<!DOCTYPE PcGts [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<PcGts><Page imageFilename="&secret;"/></PcGts>
'''


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL])
def test_hostile_xml_is_refused(folder, text):
    (folder / "evil.xml").write_text(text)
    for call in (lambda: import_labels(folder / "evil.xml"),
                 lambda: import_labels(folder / "evil.xml", "cvat"),
                 lambda: import_labels(folder / "evil.xml", "page-xml"),
                 lambda: load_annotations(folder / "evil.xml")):
        with pytest.raises(UnsafeXMLError, match=r"refused: .*<!DOCTYPE"):
            call()


def test_load_annotations_reads_label_files(folder):
    (folder / "instances_default.json").write_text(json.dumps(COCO))
    COCO_OUTSIDE = json.loads(json.dumps(COCO))
    COCO_OUTSIDE["annotations"][0]["bbox"] = [190.0, 20.0, 12.0, 20.0]  # beyond the 200 px
    (folder / "outside.json").write_text(json.dumps(COCO_OUTSIDE))
    loaded = load_annotations(folder / "instances_default.json")
    assert len(loaded.boxes) == 4 and set(loaded.boxes["digit"]) == {0, 2, 3, 7}
    assert [p.reason for p in loaded.problems] == [
        "annotation id 17: image_id 9 names no image of 'images'",
        "1 boxes skipped: label is not a digit ('x' 1)"]
    outside = load_annotations(folder / "outside.json")
    assert "annotation id 1: box 190,20,202,40 extends beyond the image (200 x 100 px)" in [
        p.reason for p in outside.problems]
    assert len(outside.boxes) == 3


def test_import_labels_command_writes_digit_boxes(folder):
    from annotations.import_command import import_labels_command

    (folder / "annotations.xml").write_text(CVAT)
    out = folder / "out" / "labels.csv"
    result = CliRunner().invoke(import_labels_command, [str(folder / "annotations.xml"),
                                                        "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 digits on 2 images" in result.output
    assert "box 3: box lacks one of xtl" in result.output
    assert "1 boxes skipped: label is not a digit ('x' 1)" in result.output
    assert out.read_text().splitlines()[1] == "../page1.png,10,20,22,40,3"
    boxes, negatives, problems = read_box_csv(out)
    assert problems == [] and negatives == []
    assert _boxes(type("I", (), {"boxes": boxes})(), folder) == EXPECTED
    result = CliRunner().invoke(import_labels_command, [str(folder / "annotations.xml"),
                                                        "--format", "coco", "-o", str(out)])
    assert result.exit_code == 1 and "not valid JSON" in result.output
    (folder / "only_x.json").write_text(json.dumps([LABEL_STUDIO[0] | {"annotations": [
        {"id": 1, "result": [_ls_result("a3", 80, 20, 10, 20, "x")]}]}]))
    result = CliRunner().invoke(import_labels_command, [str(folder / "only_x.json"), "-o",
                                                        str(folder / "nothing.csv")])
    assert result.exit_code == 1 and "no digit box to import" in result.output
    assert not (folder / "nothing.csv").exists()


def _written_boxes():
    return pd.DataFrame({"file": ["w0001.png", "w0001.png", "w0002.png"],
                         "x0": [3, 20, 7], "y0": [4, 4, 9], "x1": [11, 29, 15],
                         "y1": [18, 18, 23], "suggested": [5, 6, 1],
                         "uncertainty": [0.9, 0.9, 0.7]})


def _patches(folder):
    Image.new("L", (40, 30), 255).save(folder / "w0001.png")
    Image.new("L", (32, 32), 255).save(folder / "w0002.png")
    return {"w0001.png": (40, 30), "w0002.png": (32, 32)}


def _filled(boxes):
    return sorted((f, x0, y0, x1, y1, d) for f, x0, y0, x1, y1, d in
                  zip(boxes.file, boxes.x0, boxes.y0, boxes.x1, boxes.y1, [8, 0, 4], strict=True))


def test_via_project_round_trip(tmp_path):
    folder = tmp_path / "to_label"
    folder.mkdir()
    sizes, boxes = _patches(folder), _written_boxes()
    project = via_project(folder, list(sizes), boxes, "to_label")
    unlabelled = tmp_path / "unlabelled.json"
    unlabelled.write_text(json.dumps(project))
    assert len(import_labels(unlabelled).boxes) == 0               # nothing labelled yet
    assert dict(import_labels(unlabelled).skipped) == {("no label", ""): 3}
    digits = iter(["8", "0", "4"])                                 # the historian types them
    for record in project["_via_img_metadata"].values():
        for region in record["regions"]:
            region["region_attributes"]["digit"] = next(digits)
    (folder / "via_export.json").write_text(json.dumps(project["_via_img_metadata"]))
    back = import_labels(folder / "via_export.json")
    assert back.problems == [] and not back.skipped
    got = sorted((Path(r.image).name, r.x0, r.y0, r.x1, r.y1, r.digit)
                 for r in back.boxes.itertuples())
    assert got == _filled(boxes)


def test_label_studio_round_trip(tmp_path):
    folder = tmp_path / "to_label"
    folder.mkdir()
    sizes, boxes = _patches(folder), _written_boxes()
    tasks = label_studio_tasks(folder, sizes, boxes)
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=to_label/w0001.png"
    digits = iter(["8", "0", "4"])
    exported = []
    for number, task in enumerate(tasks):                         # what Label Studio exports
        result = json.loads(json.dumps(task["predictions"][0]["result"]))
        for region in result:
            region["value"]["rectanglelabels"] = [next(digits)]
        exported.append({"id": 100 + number, "data": task["data"], "predictions": [],
                         "annotations": [{"id": 200 + number, "was_cancelled": False,
                                          "result": result}]})
    (folder / "export.json").write_text(json.dumps(exported))
    back = import_labels(folder / "export.json")
    assert back.problems == [] and not back.skipped
    got = sorted((Path(r.image).name, r.x0, r.y0, r.x1, r.y1, r.digit)
                 for r in back.boxes.itertuples())
    assert got == _filled(boxes)
    assert {Path(r).parent for r in back.boxes["image"]} == {folder.resolve()}


def test_label_studio_empty_submission_is_a_digit_free_image(folder):
    tasks = [{"id": 1, "data": {"image": "page1.png"},
              "annotations": [{"id": 2, "was_cancelled": False, "result": []}]},
             {"id": 3, "data": {"image": "sub/page2.png"}, "annotations": []}]
    (folder / "ls.json").write_text(json.dumps(tasks))
    imported = import_labels(folder / "ls.json")
    assert imported.negatives == [str((folder / "page1.png").resolve())]
    assert imported.unboxed == [str((folder / "sub" / "page2.png").resolve())]


def test_unknown_json_and_bad_json_name_the_problem(folder):
    (folder / "other.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="JSON of no known label tool"):
        import_labels(folder / "other.json")
    (folder / "broken.json").write_text('{"images": [')
    with pytest.raises(ValueError, match=r"not valid JSON \(line 1"):
        load_annotations(folder / "broken.json")
