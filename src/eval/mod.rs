//! Detection decoding, NMS and COCO-style mAP against YOLO-format labels.
