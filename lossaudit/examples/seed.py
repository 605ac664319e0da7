"""The seed write-up's loss, rebuilt as a standalone TensorFlow function.

This is the bundled example ``lossaudit report`` audits when given no target. It follows the
write-up (a YAD2K-style YOLOv2 loss from a well-known deep-learning course) in the canonical
frame: ``y_true`` and raw ``y_pred`` of shape ``(batch, H, W, anchors, 5 + C)``.

Kept as written, on purpose:

- object weight 5, no-object weight 1, class weight 1, coordinates weight 1;
- sigmoid xy and confidence, raw wh compared with ``log(w / anchor)``, softmax class outputs;
- the no-object term skipped where a predicted box overlaps a true box of its image by IoU > 0.6;
- ``truth_class_probs = softmax(truth classes)``: the write-up's own line, a bug (BUG-CLASSES #2);
- components logged with ``tf.summary.scalar`` from inside the loss;
- total = 0.5 * (confidence + classification + coordinates), summed over the batch.

Codec: ``xy=sigmoid, wh=exp, obj=sigmoid, cls=softmax``, anchors 1.0.
"""

from __future__ import annotations

import tensorflow as tf

OBJECT_SCALE = 5.0
NO_OBJECT_SCALE = 1.0
CLASS_SCALE = 1.0
COORDINATES_SCALE = 1.0
IGNORE_IOU = 0.6
ANCHOR = 1.0


def image_boxes(xy: tf.Tensor, wh: tf.Tensor) -> tf.Tensor:
    """Corners ``(x1, y1, x2, y2)`` in image fractions from cell offsets and image-fraction sizes.

    ``xy`` and ``wh`` have shape ``(batch, H, W, anchors, 2)``; the result ``(..., 4)``.
    """
    shape = tf.shape(xy)
    rows, cols = shape[1], shape[2]
    col = tf.cast(tf.reshape(tf.range(cols), (1, 1, -1, 1)), xy.dtype)
    row = tf.cast(tf.reshape(tf.range(rows), (1, -1, 1, 1)), xy.dtype)
    cx = (xy[..., 0] + col) / tf.cast(cols, xy.dtype)
    cy = (xy[..., 1] + row) / tf.cast(rows, xy.dtype)
    half_w, half_h = wh[..., 0] / 2, wh[..., 1] / 2
    return tf.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)


def best_iou_with_truth(
    pred_boxes: tf.Tensor, true_boxes: tf.Tensor, present: tf.Tensor
) -> tf.Tensor:
    """For every predicted box, its best IoU with the true boxes of the same image.

    ``pred_boxes``, ``true_boxes``: ``(batch, H, W, anchors, 4)`` corners; ``present``
    ``(batch, H, W, anchors)`` marks the anchors holding a true box. Returns ``(batch, H, W, anchors)``.
    """
    shape = tf.shape(pred_boxes)
    flat = (shape[0], -1, 4)
    p = tf.reshape(pred_boxes, flat)[:, :, None, :]
    t = tf.reshape(true_boxes, flat)[:, None, :, :]
    lo = tf.maximum(p[..., :2], t[..., :2])
    hi = tf.minimum(p[..., 2:], t[..., 2:])
    inter = tf.reduce_prod(tf.maximum(hi - lo, 0.0), axis=-1)
    area_p = tf.reduce_prod(p[..., 2:] - p[..., :2], axis=-1)
    area_t = tf.reduce_prod(t[..., 2:] - t[..., :2], axis=-1)
    iou = tf.math.divide_no_nan(inter, area_p + area_t - inter)
    iou = iou * tf.reshape(present, (shape[0], 1, -1))
    return tf.reshape(tf.reduce_max(iou, axis=-1), shape[:4])


def seed_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """The write-up's YOLO loss: a scalar, with its components logged via ``tf.summary``."""
    y_true = tf.convert_to_tensor(y_true, tf.float32)
    y_pred = tf.convert_to_tensor(y_pred, tf.float32)
    detectors_mask = y_true[..., 4:5]

    predicted_xy = tf.sigmoid(y_pred[..., 0:2])
    predicted_presence = tf.sigmoid(y_pred[..., 4:5])
    predicted_class_probs = tf.nn.softmax(y_pred[..., 5:])  # predicts class(es)
    truth_class_probs = tf.nn.softmax(y_true[..., 5:])  # GT class(es): the write-up's line
    matching_classes = truth_class_probs

    has_box = detectors_mask > 0
    truth_wh = y_true[..., 2:4]
    truth_log_wh = tf.math.log(tf.where(has_box, truth_wh, 1.0) / ANCHOR)
    truth_boxes = tf.concat([y_true[..., 0:2], truth_log_wh], axis=-1)
    predicted_boxes = tf.concat([predicted_xy, y_pred[..., 2:4]], axis=-1)

    pred_corners = image_boxes(predicted_xy, ANCHOR * tf.exp(y_pred[..., 2:4]))
    true_corners = image_boxes(y_true[..., 0:2], truth_wh)
    best_ious = best_iou_with_truth(pred_corners, true_corners, y_true[..., 4])
    object_detections = tf.cast(best_ious > IGNORE_IOU, tf.float32)[..., None]

    no_object_weights = NO_OBJECT_SCALE * (1 - object_detections) * (1 - detectors_mask)
    has_object_weights = OBJECT_SCALE * detectors_mask
    no_objects_loss = no_object_weights * tf.square(0.0 - predicted_presence)
    objects_loss = has_object_weights * tf.square(1.0 - predicted_presence)
    confidence_loss = objects_loss + no_objects_loss

    classification_weights = CLASS_SCALE * detectors_mask
    classification_loss = classification_weights * tf.square(
        matching_classes - predicted_class_probs
    )

    coordinates_weights = COORDINATES_SCALE * detectors_mask
    coordinates_loss = coordinates_weights * tf.square(truth_boxes - predicted_boxes)

    confidence_loss_sum = tf.reduce_sum(confidence_loss)
    classification_loss_sum = tf.reduce_sum(classification_loss)
    coordinates_loss_sum = tf.reduce_sum(coordinates_loss)
    no_objects_loss_sum = tf.reduce_sum(no_objects_loss)
    objects_loss_sum = tf.reduce_sum(objects_loss)

    step = tf.summary.experimental.get_step()
    step = 0 if step is None else step
    tf.summary.scalar("confidence_loss_sum", data=confidence_loss_sum, step=step)
    tf.summary.scalar("classification_loss_sum", data=classification_loss_sum, step=step)
    tf.summary.scalar("coordinates_loss_sum", data=coordinates_loss_sum, step=step)
    tf.summary.scalar("no_objects_loss_sum", data=no_objects_loss_sum, step=step)
    tf.summary.scalar("objects_loss_sum", data=objects_loss_sum, step=step)

    return 0.5 * (confidence_loss_sum + classification_loss_sum + coordinates_loss_sum)
