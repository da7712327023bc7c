# The test oracle: R's metafor, fed cases on stdin, one per line ("id<TAB>events<TAB>totals",
# comma-separated counts), answering one line per case ("id<TAB>name=value<TAB>..."). A line
# "END" is answered by "END" (the end of a batch); the process serves a whole test session.
# Optimiser tolerances are tightened (metafor's defaults stop at about 1e-4 for tau2 and 1e-5 in
# the GLMM deviance, too loose for a comparison to 1e-6); the models are metafor's own.
suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
  library(numDeriv)
})

pm_control <- list(tol = 1e-14, maxiter = 10000)
# lme4's penalised IRLS may not reach the tightest tolerance: the next one is tried
glmm_tolerances <- c(1e-12, 1e-10, 1e-8, 1e-7)
glmm_control <- function(tol_pwrss) {
  list(glmerCtrl = list(optimizer = "bobyqa", tolPwrss = tol_pwrss,
                        optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
}

fit_glmm <- function(xi, ni) {
  message <- NULL
  for (tol in glmm_tolerances) {
    fit <- tryCatch(rma.glmm(measure = "PLO", xi = xi, ni = ni, control = glmm_control(tol)),
                    error = function(e) conditionMessage(e))
    if (!is.character(fit)) return(fit)
    message <- fit
  }
  message
}

fmt <- function(name, value) {
  if (is.null(value) || length(value) == 0 || is.na(value)) return(paste0(name, "=NA"))
  sprintf("%s=%.17g", name, as.numeric(value))
}

handbook_pi <- function(beta, se, tau2, k) {
  # Higgins, Thompson & Spiegelhalter (2009), the Cochrane Handbook: t with k - 2 df
  if (k < 3) return(c(NA, NA))
  half <- qt(0.975, k - 2) * sqrt(tau2 + se^2)
  c(beta - half, beta + half)
}

answer <- function(xi, ni) {
  k <- length(xi)
  out <- c(fmt("k", k))
  exact <- binom.test(sum(xi), sum(ni))$conf.int
  out <- c(out, fmt("exact_low", exact[1]), fmt("exact_high", exact[2]))
  if (k < 2) return(out)
  knha <- rma(measure = "PLO", xi = xi, ni = ni, method = "PM", test = "knha", control = pm_control)
  adhoc <- rma(measure = "PLO", xi = xi, ni = ni, method = "PM", test = "adhoc", control = pm_control)
  z <- rma(measure = "PLO", xi = xi, ni = ni, method = "PM", test = "z", control = pm_control)
  dl <- rma(measure = "PLO", xi = xi, ni = ni, method = "DL", test = "z")
  pred <- predict(knha)
  hb <- handbook_pi(z$beta, z$se, z$tau2, k)
  out <- c(out, fmt("pm_beta", knha$beta), fmt("pm_tau2", knha$tau2), fmt("pm_i2", knha$I2),
           fmt("knha_low", knha$ci.lb), fmt("knha_high", knha$ci.ub),
           fmt("adhoc_low", adhoc$ci.lb), fmt("adhoc_high", adhoc$ci.ub),
           fmt("knha_pi_low", pred$pi.lb), fmt("knha_pi_high", pred$pi.ub),
           fmt("pm_pi_low", hb[1]), fmt("pm_pi_high", hb[2]),
           fmt("dl_beta", dl$beta), fmt("dl_low", dl$ci.lb), fmt("dl_high", dl$ci.ub),
           fmt("dl_tau2", dl$tau2))
  glmm <- fit_glmm(xi, ni)
  if (is.character(glmm)) {
    return(c(out, paste0("glmm_error=", gsub("[\t\n]", " ", glmm))))
  }
  gpred <- predict(glmm)
  se <- precise_glmm_se(xi, ni, glmm)
  z <- qnorm(0.975)
  ghb <- handbook_pi(glmm$beta, se, glmm$tau2, k)
  c(out, fmt("glmm_beta", glmm$beta), fmt("glmm_se", glmm$se), fmt("glmm_tau2", glmm$tau2),
    fmt("glmm_i2", glmm$I2), fmt("glmm_low", glmm$ci.lb), fmt("glmm_high", glmm$ci.ub),
    fmt("glmm_se_precise", se), fmt("glmm_precise_low", glmm$beta - z * se),
    fmt("glmm_precise_high", glmm$beta + z * se),
    fmt("glmm_native_pi_low", gpred$pi.lb), fmt("glmm_native_pi_high", gpred$pi.ub),
    fmt("glmm_pi_low", ghb[1]), fmt("glmm_pi_high", ghb[2]))
}

# The SE of rma.glmm's estimate as lme4's vcov defines it (twice the inverse Hessian of the
# deviance in (theta, beta)), with numDeriv's Richardson-extrapolated Hessian of lme4's own
# deviance function at metafor's optimum instead of lme4's step-1e-4 differences.
precise_glmm_se <- function(xi, ni, glmm) {
  data <- data.frame(x = xi, m = ni - xi, study = factor(seq_along(xi)))
  for (tol in glmm_tolerances) {
    control <- glmerControl(optimizer = "bobyqa", tolPwrss = tol,
                            optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
    devfun <- tryCatch(glmer(cbind(x, m) ~ 1 + (1 | study), data = data, family = binomial,
                             nAGQ = 7, control = control, devFunOnly = TRUE),
                       error = function(e) NULL)
    if (is.null(devfun)) next
    hessian <- tryCatch(numDeriv::hessian(devfun, c(sqrt(glmm$tau2), c(glmm$beta))),
                        error = function(e) NULL)
    if (is.null(hessian)) next
    variance <- tryCatch(2 * solve(hessian)[2, 2], error = function(e) NA)
    if (!is.na(variance) && variance > 0) return(sqrt(variance))
    return(glmm$se)  # lme4 falls back to the conditional variance too
  }
  NA
}

input <- file("stdin")
open(input)
cat("READY metafor", as.character(packageVersion("metafor")), "\n", sep = " ")
flush(stdout())
while (length(line <- readLines(input, n = 1)) > 0) {
  if (line == "END") {
    cat("END\n")
    flush(stdout())
    next
  }
  parts <- strsplit(line, "\t", fixed = TRUE)[[1]]
  xi <- as.numeric(strsplit(parts[2], ",", fixed = TRUE)[[1]])
  ni <- as.numeric(strsplit(parts[3], ",", fixed = TRUE)[[1]])
  fields <- tryCatch(answer(xi, ni),
                     error = function(e) paste0("error=", gsub("[\t\n]", " ", conditionMessage(e))))
  cat(paste(c(parts[1], fields), collapse = "\t"), "\n", sep = "")
  flush(stdout())
}
