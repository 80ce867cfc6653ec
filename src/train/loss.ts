/**
 * Task losses on the sequence-classification head, as BertForSequenceClassification computes them:
 * mean cross-entropy for classification, mean squared error for a one-output regression head.
 */
import * as tf from '@tensorflow/tfjs';

/** Mean cross-entropy of `logits` [batch, classes] against integer `labels` [batch]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const logProbs = tf.logSoftmax(logits, -1);
    const onehot = tf.oneHot(labels.toInt(), logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(logProbs, onehot), -1))) as tf.Scalar;
  });
}

/** Mean squared error of a regression head's single output [batch, 1] against `targets` [batch]. */
export function regressionLoss(predictions: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.square(tf.sub(predictions.reshape([-1]), targets.toFloat()))) as tf.Scalar);
}

export function taskLoss(logits: tf.Tensor2D, labels: tf.Tensor1D, regression: boolean): tf.Scalar {
  return regression ? regressionLoss(logits, labels) : crossEntropy(logits, labels);
}
