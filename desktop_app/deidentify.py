"""De-identification of what the clinic sends to the hub, on its own for a privacy officer's review.

DICOM de-identification is an allow-list, stricter than the DICOM PS3.15 basic profile: the written
file is a new dataset holding only what displaying and training on the image need: the SOP class, new
SOP instance / series / study UIDs (consistent within one export), modality, the image pixel module,
the modality and VOI LUTs (their tables, not their free-text explanations), pixel spacing, body part,
view position, image type, lossy-compression flags and the character set. Of those, a coded or short
text value that is not a plain code (upper-case letters, digits, space, underscore) is dropped. The
patient and study attributes the IOD requires (name, id, birth date, sex, study date and time,
referring physician, study id, accession number, series and instance numbers) are present but empty;
``PatientIdentityRemoved = YES`` and ``DeidentificationMethod`` are set. Anything else (free text,
dates, private tags, overlays, sequences, the original preamble and file meta information such as the
source AE title) is not carried over; the file meta information is rebuilt. A DICOM that declares
burned-in annotation is skipped: its pixels may show the patient's name. PNG/JPEG are copied byte for
byte except their metadata: PNG text, EXIF and time chunks and JPEG APPn/COM segments (EXIF, XMP, IPTC,
comments) are dropped, the pixel data is not re-encoded, and every written image is decoded again and
compared with the original's pixels.

Used by ``desktop_app.labelled_export`` (the batch writer) and nothing else.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

DEIDENTIFICATION_METHOD = "PneumoScan allow-list: image pixels, LUTs and geometry only"  # LO: at most 64 characters
# The DICOM allow-list (module docstring): attributes copied as they are.
_KEEP = (
    "SpecificCharacterSet",
    "ImageType",
    "SOPClassUID",
    "Modality",
    "ConversionType",
    "BodyPartExamined",
    "ViewPosition",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "PlanarConfiguration",
    "PixelAspectRatio",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "BurnedInAnnotation",
    "LossyImageCompression",
    "LossyImageCompressionRatio",
    "LossyImageCompressionMethod",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "PresentationLUTShape",
    "PixelData",
)
_LUT_SEQUENCES = ("ModalityLUTSequence", "VOILUTSequence")  # items keep their table only
_LUT_ITEM = ("LUTDescriptor", "ModalityLUTType", "LUTData")
# Type 2 attributes of the patient, study, series and image modules: present and empty.
_EMPTY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "SeriesNumber",
    "InstanceNumber",
)
_NEW_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
_TEXT_VRS = ("CS", "SH", "LO", "AE")
_CODE = re.compile(r"[A-Z0-9_ ]{0,16}")  # what a kept text value may be: a code such as "CHEST", "ISO_IR 100"


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = {b"PLTE", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs", b"bKGD"}


def strip_png(data: bytes) -> bytes:
    """The PNG without ancillary chunks that can carry text (tEXt, zTXt, iTXt, eXIf, tIME, iCCP, unknown)."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    out, i = bytearray(PNG_SIGNATURE), len(PNG_SIGNATURE)
    while i + 12 <= len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        kind, end = data[i + 4 : i + 8], i + 12 + n
        if end > len(data):
            break
        if kind[:1].isupper() or kind in _PNG_KEEP:  # critical chunks (IHDR, PLTE, IDAT, IEND) and safe ones
            out += data[i:end]
        if kind == b"IEND":
            return bytes(out)
        i = end
    raise ValueError("truncated PNG (no IEND chunk)")


def _keep_jpeg_segment(marker: int, segment: bytes) -> bool:
    payload = segment[4:]
    if marker == 0xFE:  # COM
        return False
    if 0xE0 <= marker <= 0xEF:  # APPn: JFIF, ICC profile and Adobe colour transform only
        return (
            marker == 0xE0
            and payload[:5] in (b"JFIF\0", b"JFXX\0")
            or marker == 0xE2
            and payload.startswith(b"ICC_PROFILE\0")
            or marker == 0xEE
            and payload.startswith(b"Adobe")
        )
    return True


def strip_jpeg(data: bytes) -> bytes:
    """The JPEG without comments and APPn metadata (EXIF, XMP, IPTC...) or anything after its end marker;
    the compressed scans are copied untouched."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    out, i = bytearray(b"\xff\xd8"), 2
    try:
        while i < len(data):
            if data[i] != 0xFF:
                raise ValueError(f"corrupt JPEG (no marker at byte {i})")
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
            elif marker == 0xD9:  # EOI: drop any trailing bytes
                return bytes(out + b"\xff\xd9")
            elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers
                out += data[i : i + 2]
                i += 2
            else:
                end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
                if marker == 0xDA:  # SOS: the entropy-coded data runs to the next real marker
                    while True:
                        end = data.find(b"\xff", end)
                        if end < 0:
                            raise IndexError(end)
                        if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                            end += 2
                        else:
                            break
                    out += data[i:end]
                elif _keep_jpeg_segment(marker, data[i:end]):
                    out += data[i:end]
                i = end
    except IndexError:
        pass
    raise ValueError("truncated JPEG (no end marker)")


def _allowed(src: Dataset, keywords: tuple[str, ...]) -> Dataset:
    """A new dataset with copies of ``src``'s elements named in ``keywords`` whose text values are codes."""
    from pydicom.dataset import Dataset

    out = Dataset()
    for kw in keywords:
        if kw not in src:
            continue
        elem = src[kw]
        values = elem.value if elem.VM > 1 else [elem.value]
        if elem.VR in _TEXT_VRS and not all(_CODE.fullmatch(str(v or "")) for v in values):
            logger.info("De-identification: dropped %s (not a plain code)", kw)
            continue
        out.add(copy.deepcopy(elem))
    return out


def deidentify_dicom(ds: Dataset, uid_map: dict[str, str]) -> Dataset:
    """A new, de-identified dataset (with file meta) built from ``ds`` by the allow-list in the module
    docstring; ``uid_map`` maps old → new UIDs so that one export keeps studies and series together."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

    out = _allowed(ds, _KEEP)
    for kw in _LUT_SEQUENCES:
        if ds.get(kw):
            setattr(out, kw, Sequence([_allowed(item, _LUT_ITEM) for item in ds[kw].value]))
    for kw in _EMPTY:
        setattr(out, kw, None)
    for kw in _NEW_UIDS:
        old = str(ds.get(kw) or "")
        new = uid_map.setdefault(old, generate_uid()) if old else generate_uid()
        setattr(out, kw, new)
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = DEIDENTIFICATION_METHOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    out.DeidentificationMethodCodeSequence = Sequence([code])
    out.LongitudinalTemporalInformationModified = "REMOVED"

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = out.SOPClassUID
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    meta.TransferSyntaxUID = getattr(ds, "file_meta", {}).get("TransferSyntaxUID") or (
        ImplicitVRLittleEndian if ds.original_encoding[0] else ExplicitVRLittleEndian
    )
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out.file_meta = meta
    return out
