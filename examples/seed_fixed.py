"""The seed loss with what ``lossaudit report`` flags fixed, for the worked example.

Same structure, weights, ignore rule and ``tf.summary`` logging as
:mod:`lossaudit.examples.seed`, with three changes:

- objectness: binary cross-entropy on the obj logit instead of a squared error on its sigmoid
  (``objects.not_saturated``, ``no_objects.not_saturated``): the object anchors keep a gradient
  after the 844 empty anchors have driven every logit down;
- the no-object term is averaged over the empty anchors of each image instead of summed, so it
  no longer outweighs the one object anchor by hundreds to one (the balance table);
- classification: per-class sigmoid cross-entropy against the one-hot truth, which can train
  with one class (``classification.single_class``; the original also applied softmax to the
  truth, BUG-CLASSES #2).

Codec: ``xy=sigmoid, wh=exp, obj=sigmoid, cls=sigmoid``.
"""

from __future__ import annotations

import tensorflow as tf

from lossaudit.examples.seed import (
    ANCHOR,
    CLASS_SCALE,
    COORDINATES_SCALE,
    IGNORE_IOU,
    NO_OBJECT_SCALE,
    OBJECT_SCALE,
    best_iou_with_truth,
    image_boxes,
)


def fixed_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """The seed loss, fixed; logs its components with ``tf.summary.scalar`` like the original."""
    y_true = tf.convert_to_tensor(y_true, tf.float32)
    y_pred = tf.convert_to_tensor(y_pred, tf.float32)
    mask = y_true[..., 4:5]
    has_box = mask > 0
    predicted_xy = tf.sigmoid(y_pred[..., 0:2])
    truth_log_wh = tf.math.log(tf.where(has_box, y_true[..., 2:4], 1.0) / ANCHOR)
    truth_boxes = tf.concat([y_true[..., 0:2], truth_log_wh], axis=-1)
    predicted_boxes = tf.concat([predicted_xy, y_pred[..., 2:4]], axis=-1)

    predicted_wh = ANCHOR * tf.exp(tf.clip_by_value(y_pred[..., 2:4], -10, 10))
    pred_corners = image_boxes(predicted_xy, predicted_wh)
    true_corners = image_boxes(y_true[..., 0:2], y_true[..., 2:4])
    best_ious = best_iou_with_truth(pred_corners, true_corners, y_true[..., 4])
    ignored = tf.cast(best_ious > IGNORE_IOU, tf.float32)[..., None]

    logit = y_pred[..., 4:5]
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    empty = (1 - ignored) * (1 - mask)
    per_image_empty = tf.maximum(tf.reduce_sum(empty, axis=[1, 2, 3, 4], keepdims=True), 1.0)
    no_objects = tf.reduce_sum(
        NO_OBJECT_SCALE * empty * bce(labels=tf.zeros_like(logit), logits=logit) / per_image_empty
    )
    objects = tf.reduce_sum(OBJECT_SCALE * mask * bce(labels=tf.ones_like(logit), logits=logit))
    classification = tf.reduce_sum(
        CLASS_SCALE * mask * bce(labels=y_true[..., 5:], logits=y_pred[..., 5:])
    )
    coordinates = tf.reduce_sum(COORDINATES_SCALE * mask * tf.square(truth_boxes - predicted_boxes))

    step = tf.summary.experimental.get_step()
    step = 0 if step is None else step
    tf.summary.scalar("objects_loss_sum", data=objects, step=step)
    tf.summary.scalar("no_objects_loss_sum", data=no_objects, step=step)
    tf.summary.scalar("classification_loss_sum", data=classification, step=step)
    tf.summary.scalar("coordinates_loss_sum", data=coordinates, step=step)
    return 0.5 * (objects + no_objects + classification + coordinates)
